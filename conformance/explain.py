"""Differences between two Python versions that the spec itself predicts.

``--reference asyncio@python3.11 --candidate asyncio@python3.13`` compares two
CPython releases, and some of what differs is listed in docs/spec.md's
version table (``run()`` stopped taking plain generators in 3.12, say). Those
differences are facts the spec states, not divergences, and a report must
show them as such.

The reference is an executable spec that follows the release of the
interpreter it runs under (``reference.versions``), so whether the spec
attributes a difference to the two releases has an executable answer: run
the reference under each side's interpreter. If the reference under the
reference side's interpreter observes what the reference side observed, and
the reference under the candidate's interpreter observes what the candidate
observed, the spec predicts the whole difference: it is a version
difference. Anything else (a difference the reference reproduces on neither
or only one side) stays a divergence.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from conformance.differential import SAME, CheckResult, judge
from conformance.isolation import WorkerPair, WorkerProcess

#: The status of a check whose difference the spec attributes to the two sides' versions.
VERSION = "version difference"


class VersionExplainer:
    """The reference under each side's interpreter, started on first use.

    ``reference_python`` / ``candidate_python``: the interpreters the two
    sides run under (None: the driver's); ``*_kind``: the two sides' kinds
    (a ``run`` side is explained by ``reference.run``, any other by
    ``reference``).
    """

    def __init__(
        self,
        reference_python: Optional[str],
        candidate_python: Optional[str],
        reference_kind: str,
        candidate_kind: str,
        timeout_s: float = 60.0,
        strict_messages: bool = False,
    ) -> None:
        self.timeout_s = timeout_s
        self.strict = strict_messages
        self.pair = WorkerPair(
            WorkerProcess(_reference_for(reference_kind), python=reference_python),
            WorkerProcess(_reference_for(candidate_kind), python=candidate_python),
        )

    def explains(self, result: CheckResult) -> bool:
        """Whether the reference under each side's interpreter reproduces that side's observation."""
        if "calls" not in result.reference or "calls" not in result.candidate:
            return False  # a HANG or CRASH is never a version difference
        scenario = result.scenario
        if not (self.pair.reference.supports(scenario) and self.pair.candidate.supports(scenario)):
            return False
        as_reference_side, as_candidate_side = self.pair.check(scenario, self.timeout_s)
        return self._same(result, as_reference_side, result.reference, self.pair.reference) and self._same(
            result, as_candidate_side, result.candidate, self.pair.candidate
        )

    def _same(self, result: CheckResult, predicted: Dict[str, Any], seen: Dict[str, Any], worker: Any) -> bool:
        def search(orders: List[List[str]], expect: Dict[str, Any]) -> Dict[str, Any]:
            return worker.execute(result.scenario, 4 * self.timeout_s, orders, expect)

        verdict = judge(result.scenario, predicted, {"observation": seen}, search, self.strict)
        return verdict.status == SAME

    def close(self) -> None:
        self.pair.close()


def _reference_for(kind: str) -> str:
    return "reference.run" if kind == "run" else "reference"
