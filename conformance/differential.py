"""One differential check: a scenario under the reference and the candidate, judged.

This is where the pieces meet: the isolation layer runs the scenario in the
two worker processes at once, ``compare`` names the differences, and, when
the scenario left several tasks for a runner to cancel, the reference is
re-run in the orders CPython leaves open until one explains the candidate's
run. Only a difference that no allowed order explains is a divergence, and
only one the candidate shows again on every re-run is reported as one
(``confirm``): a candidate whose outcome changes from run to run is FLAKY.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from conformance.compare import Difference, compare, outcome_difference
from conformance.scenario import Scenario

#: Statuses of a check. ``invalid``: the reference itself could not run the
#: scenario (a harness problem, never blamed on the candidate).
SAME, DIVERGED, UNSUPPORTED, INVALID = "same", "diverged", "unsupported", "invalid"

#: The most cancellation orders tried for one scenario (7! = 5040).
MAX_ORDERS = 5040

#: How many times the candidate runs a divergent scenario again before it is reported.
RERUNS = 2

#: ``search(orders, expect)``: run the reference in each order until one observes ``expect``
#: (``WorkerPair.search`` with the scenario and a deadline bound).
Search = Callable[[List[List[str]], Dict[str, Any]], Dict[str, Any]]


@dataclass
class CheckResult:
    scenario: Scenario
    status: str
    differences: List[Difference] = field(default_factory=list)
    reference: Dict[str, Any] = field(default_factory=dict)
    candidate: Dict[str, Any] = field(default_factory=dict)
    orders_tried: int = 0
    #: What each re-run of a divergent scenario showed: ``same`` or a signature (see ``confirm``).
    reruns: List[str] = field(default_factory=list)

    @property
    def signature(self) -> Optional[str]:
        return self.differences[0].signature() if self.differences else None

    @property
    def flaky(self) -> bool:
        """Whether a re-run of the candidate showed something else than the first run."""
        return any(outcome != self.signature for outcome in self.reruns)


def check(pair: Any, scenario: Scenario, timeout: float, strict_messages: bool = False) -> CheckResult:
    """Run ``scenario`` on both sides of ``pair`` (a ``WorkerPair``) and judge it (no re-runs)."""
    if not pair.candidate_supports(scenario):
        return CheckResult(scenario, UNSUPPORTED)
    text = scenario.to_json()
    ref_reply, cand_reply = pair.check(text, timeout)

    def search(orders: List[List[str]], expect: Dict[str, Any]) -> Dict[str, Any]:
        return pair.search(text, orders, expect, timeout * 4)

    return judge(scenario, ref_reply, cand_reply, search, strict_messages)


def judge(
    scenario: Scenario,
    ref_reply: Dict[str, Any],
    cand_reply: Dict[str, Any],
    search: Search,
    strict_messages: bool = False,
) -> CheckResult:
    """The verdict on two workers' replies (or HANG / CRASH outcomes) for ``scenario``."""
    if "observation" not in ref_reply:
        return CheckResult(scenario, INVALID, reference=ref_reply, candidate=cand_reply)
    reference = ref_reply["observation"]
    if "observation" not in cand_reply:
        outcome = cand_reply if "outcome" in cand_reply else {"outcome": "CRASH", "error": cand_reply.get("error")}
        return CheckResult(scenario, DIVERGED, [outcome_difference(outcome)], reference, cand_reply)
    candidate = cand_reply["observation"]
    if candidate == reference:
        return CheckResult(scenario, SAME, [], reference, candidate)
    differences = compare(scenario, reference, candidate, strict_messages)
    if not differences:
        return CheckResult(scenario, SAME, [], reference, candidate)
    orders = cancellation_orders(reference, candidate)
    if orders:
        reply = search(orders, candidate)
        if reply.get("found") is not None:
            return CheckResult(scenario, SAME, [], reference, candidate, orders_tried=reply.get("tried", 0))
    return CheckResult(scenario, DIVERGED, differences, reference, candidate, orders_tried=len(orders))


def confirm(
    result: CheckResult,
    rerun: Callable[[], Dict[str, Any]],
    search: Search,
    strict_messages: bool = False,
    runs: int = RERUNS,
) -> CheckResult:
    """Re-run the candidate ``runs`` times on a divergent scenario and record what each run showed.

    The reference is deterministic by construction, so only the candidate
    runs again (``rerun`` returns its reply or outcome). A re-run that
    observes exactly what the first run did shows the same divergence; any
    other is judged against the first run's reference observation.
    """
    for _ in range(runs):
        reply = rerun()
        if reply.get("observation", reply) == result.candidate:
            result.reruns.append(result.signature or "?")
            continue
        again = judge(result.scenario, {"observation": result.reference}, reply, search, strict_messages)
        result.reruns.append(again.signature or again.status)
    return result


def cancellation_orders(reference: Dict[str, Any], candidate: Dict[str, Any]) -> List[List[str]]:
    """The leftover-task orders worth trying for the reference, most likely first.

    The first guess is the order in which the candidate's leftover tasks first
    show up in its closing log, which is its cancellation order for every
    task that was waiting. Then every permutation, so that the search is
    complete: an observation that some order explains is never reported.
    """
    leftovers: List[str] = []
    for observation in (candidate, reference):
        for label in observation["hints"]["pending_at_main_exit"]:
            if label not in leftovers:
                leftovers.append(label)
    if len(leftovers) < 2:
        return []
    first_seen: List[str] = []
    for record in candidate["calls"]:
        for line in record["log"]:
            label = line.split(" ", 1)[0]
            if label in leftovers and label not in first_seen:
                first_seen.append(label)
    guess = first_seen + [label for label in leftovers if label not in first_seen]
    orders = [guess]
    for order in itertools.permutations(leftovers):
        if len(orders) >= MAX_ORDERS:
            break
        if list(order) != guess:
            orders.append(list(order))
    return orders


def summary_of(differences: Sequence[Difference]) -> List[Dict[str, Any]]:
    return [d.to_json() for d in differences]
