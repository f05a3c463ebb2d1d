"""A campaign: generate many scenarios, check each, group what diverges, shrink each group.

A campaign never stops at the first divergence. Hypothesis drives generation
only (its generate phase, with a fixed seed and no database, so the same seed
gives the same scenarios); every check is recorded, none fails the
Hypothesis test. Divergences are grouped by signature (clause and category of
the primary difference): one real difference of a candidate often makes a
large share of random scenarios diverge, and must show as one group with a
count, not drown the rest. Each group keeps its smallest scenario, which is
then shrunk by ``conformance.shrink`` and re-checked for stability (FLAKY).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from conformance import behaviours
from conformance.differential import DIVERGED, INVALID, SAME, UNSUPPORTED, CheckResult, check, rerun_is_stable
from conformance.scenario import Scenario
from conformance.shrink import shrink

#: Share of a time budget spent generating; the rest shrinks the groups found.
GENERATION_SHARE = 0.6


@dataclass
class Group:
    """All divergences with one signature: how many, and the smallest example."""

    signature: str
    clause: str
    category: str
    count: int
    smallest: CheckResult
    flaky: bool = False
    shrink_attempts: int = 0


@dataclass
class CampaignResult:
    seed: int
    examples: int = 0
    elapsed_s: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    clauses: Counter = field(default_factory=Counter)
    groups: Dict[str, Group] = field(default_factory=dict)
    invalid: List[CheckResult] = field(default_factory=list)

    @property
    def divergences(self) -> List[Group]:
        return [g for g in self.groups.values() if not g.flaky]

    @property
    def flaky(self) -> List[Group]:
        return [g for g in self.groups.values() if g.flaky]


class _BudgetSpent(Exception):
    """Raised inside the Hypothesis test to end generation when time is up."""


class Campaign:
    """Explore scenarios for one worker pair; see the module docstring."""

    def __init__(
        self,
        pair: Any,
        strategy: Any,
        seed: int,
        examples: Optional[int] = None,
        budget_s: Optional[float] = None,
        timeout_s: float = 5.0,
        strict_messages: bool = False,
        progress: Optional[Callable[[CampaignResult], None]] = None,
    ) -> None:
        self.pair = pair
        self.strategy = strategy
        self.examples = examples
        self.budget_s = budget_s
        self.timeout_s = timeout_s
        self.strict = strict_messages
        self.progress = progress
        self.result = CampaignResult(seed)

    def run(self) -> CampaignResult:
        start = time.monotonic()
        deadline = None if self.budget_s is None else start + self.budget_s
        generation_deadline = None if deadline is None else start + self.budget_s * GENERATION_SHARE
        self._generate(generation_deadline)
        self._shrink_groups(deadline)
        self.result.elapsed_s = time.monotonic() - start
        return self.result

    # ---------------------------------------------------------- generate

    def _generate(self, deadline: Optional[float]) -> None:
        limit = self.examples if self.examples is not None else 10**9

        @settings(
            max_examples=limit,
            database=None,
            phases=[Phase.generate],
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @hypothesis_seed(self.result.seed)
        @given(self.strategy)
        def explore(scenario: Scenario) -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise _BudgetSpent
            self.record(check(self.pair, scenario, self.timeout_s, self.strict))

        try:
            explore()
        except _BudgetSpent:
            pass

    def record(self, result: CheckResult) -> None:
        """Count one check and file a divergence under its signature."""
        stats = self.result
        stats.examples += 1
        stats.statuses[result.status] += 1
        if result.status in (SAME, DIVERGED) and result.reference.get("calls") is not None:
            stats.clauses.update(behaviours.exercised(result.scenario, result.reference))
        if result.status == INVALID:
            stats.invalid.append(result)
        elif result.status == DIVERGED:
            signature = result.signature or "?"
            group = stats.groups.get(signature)
            if group is None:
                primary = result.differences[0]
                stats.groups[signature] = Group(signature, primary.clause, primary.category, 1, result)
            else:
                group.count += 1
                if result.scenario.size() < group.smallest.scenario.size():
                    group.smallest = result
        if self.progress is not None:
            self.progress(stats)

    # ------------------------------------------------------------ shrink

    def _shrink_groups(self, deadline: Optional[float]) -> None:
        for group in list(self.result.groups.values()):
            if deadline is not None and time.monotonic() > deadline:
                return
            self._shrink(group, deadline)

    def _shrink(self, group: Group, deadline: Optional[float]) -> None:
        latest: Dict[str, CheckResult] = {}

        def still_diverges(variant: Scenario) -> bool:
            group.shrink_attempts += 1
            result = check(self.pair, variant, self.timeout_s, self.strict)
            if result.status == DIVERGED and result.signature == group.signature:
                latest["result"] = result
                return True
            return False

        shrunk = shrink(group.smallest.scenario, still_diverges, deadline=deadline)
        if "result" in latest and latest["result"].scenario == shrunk:
            group.smallest = latest["result"]
        group.flaky = not rerun_is_stable(self.pair, group.smallest, self.timeout_s)


def replay(pair: Any, scenarios: List[Scenario], timeout_s: float, strict_messages: bool = False) -> CampaignResult:
    """Check saved scenarios (no generation, no shrinking)."""
    campaign = Campaign(pair, None, seed=0, timeout_s=timeout_s, strict_messages=strict_messages)
    start = time.monotonic()
    for scenario in scenarios:
        campaign.record(check(pair, scenario, timeout_s, strict_messages))
    for group in campaign.result.groups.values():
        group.flaky = not rerun_is_stable(pair, group.smallest, timeout_s)
    campaign.result.elapsed_s = time.monotonic() - start
    return campaign.result


__all__ = ["UNSUPPORTED", "Campaign", "CampaignResult", "Group", "replay"]
