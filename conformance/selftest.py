"""``conformance selftest``: proof that the suite bites.

Runs the campaign of ``conformance run`` against every mutant of the catalogue
(``conformance.mutants``), each a runner, loop or run function with one small
mistake, and says for each whether it was caught, how long the first divergence
took and what its signature was; then the kill rate and the median time to
catch. A mutant that survives is a hole in the generators or the comparison,
unless the catalogue says which scenario element it needs and the generators
lack (it is then expected to survive, and the reason is printed).

A campaign stops at its mutant's first divergence: what is measured is how fast
the suite notices, and shrinking would only add time.

Driver side: Python 3.11+.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from conformance.campaign import Campaign
from conformance.isolation import WorkerPair, WorkerProcess, WorkerStartError
from conformance.mutants import CATALOGUE, Mutant
from reference import default_version

#: Exit statuses, as for ``conformance run``: every mutant that must be caught
#: was; one was not; the suite itself failed (a mutant would not load, or the
#: reference could not run a scenario).
EXIT_OK, EXIT_SURVIVED, EXIT_INTERNAL = 0, 1, 3
#: Time budget per mutant when neither a budget nor a number of scenarios is given.
DEFAULT_BUDGET_S = 60.0


@dataclass
class MutantOutcome:
    """What one campaign against one mutant found."""

    mutant: Mutant
    #: Why the mutant cannot be caught yet (from the catalogue), or None: it must be.
    expected_survival: Optional[str]
    caught: bool = False
    time_to_catch_s: Optional[float] = None
    examples: int = 0
    signature: Optional[str] = None
    elapsed_s: float = 0.0
    #: Why the campaign could not judge the mutant (the suite's own failure), or None.
    problem: Optional[str] = None

    @property
    def verdict(self) -> str:
        if self.problem is not None:
            return "ERROR"
        if self.caught:
            return "caught"
        return "survived" if self.expected_survival is not None else "SURVIVED"

    def to_json(self) -> Dict[str, Any]:
        return {
            "name": self.mutant.name,
            "spec": self.mutant.spec,
            "clause": self.mutant.clause,
            "kind": self.mutant.kind,
            "mistake": self.mutant.mistake,
            "expected_to_survive": self.expected_survival,
            "verdict": self.verdict,
            "caught": self.caught,
            "time_to_catch_s": None if self.time_to_catch_s is None else round(self.time_to_catch_s, 3),
            "examples": self.examples,
            "signature": self.signature,
            "elapsed_s": round(self.elapsed_s, 3),
            "problem": self.problem,
        }


def select(names: Optional[Sequence[str]]) -> List[Mutant]:
    """The catalogue, or the entries called ``names`` (``KeyError`` naming an unknown one)."""
    if not names:
        return list(CATALOGUE)
    known = {mutant.name: mutant for mutant in CATALOGUE}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KeyError(f"no mutant called {', '.join(unknown)} in the catalogue")
    return [known[name] for name in names]


def judge(
    mutant: Mutant,
    seed: int,
    budget_s: Optional[float],
    examples: Optional[int],
    timeout_s: Optional[float] = None,
    mode: str = "hypothesis",
) -> MutantOutcome:
    """Run one campaign against ``mutant``, up to its first divergence.

    Scenarios are made as ``conformance run --mode`` makes them; ``timeout_s``
    None is the campaign's adaptive per-scenario deadline.
    """
    from conformance.fuzz import Fuzzer
    from strategies import scenarios

    source = Fuzzer(mutant.kind) if mode == "fuzz" else scenarios(mutant.kind)
    outcome = MutantOutcome(mutant, mutant.expected_to_survive(default_version()))
    start = time.monotonic()
    try:
        candidate = WorkerProcess(mutant.spec, mutant.kind)
        with WorkerPair("reference.run" if mutant.kind == "run" else "reference", candidate) as pair:
            campaign = Campaign(
                pair,
                source,
                seed,
                examples=examples,
                budget_s=budget_s,
                timeout_s=timeout_s,
                stop_at_first_divergence=True,
            )
            result = campaign.run()
    except WorkerStartError as exc:
        outcome.problem = f"cannot start a worker: {exc}"
        outcome.elapsed_s = time.monotonic() - start
        return outcome
    outcome.elapsed_s = time.monotonic() - start
    outcome.examples = result.examples
    outcome.caught = bool(result.groups)
    outcome.time_to_catch_s = result.first_divergence_s
    outcome.signature = next(iter(result.groups), None)
    if result.invalid:
        outcome.problem = f"the reference could not run {len(result.invalid)} scenario(s)"
    return outcome


def run_selftest(
    mutants: Iterable[Mutant],
    seed: int,
    budget_s: Optional[float] = None,
    examples: Optional[int] = None,
    timeout_s: Optional[float] = None,
    mode: str = "hypothesis",
    progress: Optional[Callable[[MutantOutcome], None]] = None,
) -> List[MutantOutcome]:
    """Judge each mutant in turn (one at a time, so that the times are comparable)."""
    outcomes = []
    for mutant in mutants:
        outcome = judge(mutant, seed, budget_s, examples, timeout_s, mode)
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes


def describe(outcome: MutantOutcome) -> str:
    """One line per mutant: verdict, clause, name, then the time and signature or why it survived."""
    mutant = outcome.mutant
    head = f"{outcome.verdict:8} {mutant.clause:5} {mutant.kind:6} {mutant.name:36}"
    if outcome.problem is not None:
        return f"{head} {outcome.problem}"
    if outcome.caught:
        assert outcome.time_to_catch_s is not None
        return f"{head} {outcome.time_to_catch_s:6.2f} s  {outcome.examples:5} scenarios  {outcome.signature}"
    tried = f"{outcome.examples} scenarios in {outcome.elapsed_s:.1f} s"
    if outcome.expected_survival is not None:
        return f"{head} {tried} (expected: {outcome.expected_survival})"
    return f"{head} {tried}: {mutant.mistake}"


def summary(outcomes: Sequence[MutantOutcome]) -> List[str]:
    """The kill rate, overall and among the mutants the generators can reach, and the median time to catch."""
    caught = [o for o in outcomes if o.caught]
    reachable = [o for o in outcomes if o.expected_survival is None]
    reachable_caught = [o for o in reachable if o.caught]
    lines = [
        f"kill rate: {len(caught)}/{len(outcomes)} mutants caught ({_percent(len(caught), len(outcomes))}); "
        f"{len(reachable_caught)}/{len(reachable)} of those the generators can reach "
        f"({_percent(len(reachable_caught), len(reachable))})"
    ]
    times = [o.time_to_catch_s for o in caught if o.time_to_catch_s is not None]
    if times:
        slowest = max(caught, key=lambda o: o.time_to_catch_s or 0.0)
        lines.append(
            f"time to catch: median {statistics.median(times):.2f} s, "
            f"slowest {slowest.time_to_catch_s:.2f} s ({slowest.mutant.clause} {slowest.mutant.name})"
        )
    missed = [o for o in reachable if not o.caught and o.problem is None]
    if missed:
        lines.append("not caught: " + ", ".join(f"{o.mutant.clause} {o.mutant.name}" for o in missed))
    return lines


def exit_status(outcomes: Sequence[MutantOutcome]) -> int:
    if any(o.problem is not None for o in outcomes):
        return EXIT_INTERNAL
    if any(not o.caught and o.expected_survival is None for o in outcomes):
        return EXIT_SURVIVED
    return EXIT_OK


def to_json(outcomes: Sequence[MutantOutcome], settings: Dict[str, Any]) -> Dict[str, Any]:
    times = [o.time_to_catch_s for o in outcomes if o.caught and o.time_to_catch_s is not None]
    return {
        "settings": settings,
        "mutants": [o.to_json() for o in outcomes],
        "caught": sum(o.caught for o in outcomes),
        "total": len(outcomes),
        "median_time_to_catch_s": round(statistics.median(times), 3) if times else None,
        "exit_status": exit_status(outcomes),
    }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def command(
    mutants: Sequence[Mutant],
    seed: int,
    budget_s: Optional[float],
    examples: Optional[int],
    timeout_s: Optional[float],
    mode: str,
    json_path: Optional[str],
) -> int:
    """``conformance selftest``: judge ``mutants``, printing a line for each and then the summary."""
    if budget_s is None and examples is None:
        budget_s = DEFAULT_BUDGET_S
    each = f"{budget_s:g} s" if budget_s is not None else f"{examples} scenarios"
    print(f"selftest: {len(mutants)} mutants, {mode} mode, seed {seed}, at most {each} each", flush=True)

    def report(outcome: MutantOutcome) -> None:
        print(describe(outcome), flush=True)

    outcomes = run_selftest(mutants, seed, budget_s, examples, timeout_s, mode, progress=report)
    print("\n".join(summary(outcomes)))
    if json_path is not None:
        settings = {"seed": seed, "mode": mode, "budget_s": budget_s, "examples": examples, "timeout_s": timeout_s}
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_json(outcomes, settings), indent=1) + "\n", encoding="utf-8")
    return exit_status(outcomes)
