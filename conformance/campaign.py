"""A campaign: generate many scenarios, check each, group what diverges, shrink each group.

A campaign never stops at the first divergence. Scenarios come from
Hypothesis (its generate phase only, with a fixed seed and no database) or
from the seeded fuzzer (``conformance.fuzz``), in both cases the same
scenarios for the same seed; every check is recorded, none fails the
Hypothesis test. Checks are pipelined (``conformance.pipeline``) and their
results taken in the order the scenarios were made, so that the same seed
gives the same findings.

A divergent scenario is run again by the candidate (``differential.confirm``)
before it counts: one whose outcome changes is FLAKY, kept apart and not
counted as a divergence. When the two sides run different Python versions,
a difference the spec predicts for those versions (``conformance.explain``)
is a version difference, also kept apart. Divergences are grouped by signature (clause and
category of the primary difference): one real difference of a candidate often
makes a large share of random scenarios diverge, and must show as one group
with a count, not drown the rest. Each group keeps its smallest scenario,
which is then shrunk by ``conformance.shrink``; the shrunk scenario replaces
it only if it too diverges the same way on every re-run.

With a time budget, every wait ends with the budget (``pipeline.OutOfTime``):
what is in flight then is abandoned, unjudged, so that a candidate that hangs
on every scenario still ends on time.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from conformance import behaviours
from conformance.differential import DIVERGED, INVALID, SAME, UNSUPPORTED, CheckResult, confirm, judge
from conformance.explain import VERSION, VersionExplainer
from conformance.fuzz import Fuzzer
from conformance.isolation import encode_scenario
from conformance.pipeline import DEPTH, Deadlines, Finished, OutOfTime, Pipeline
from conformance.scenario import Scenario
from conformance.shrink import shrink

#: Share of a time budget spent generating; the rest shrinks the groups found.
GENERATION_SHARE = 0.6
#: How many distinct scenarios a campaign remembers to skip repeats of (a few MB).
REMEMBERED = 100_000


@dataclass
class Group:
    """All divergences (or all flaky scenarios) with one signature: how many, and the smallest example."""

    signature: str
    clause: str
    category: str
    count: int
    smallest: CheckResult
    shrink_attempts: int = 0


@dataclass
class CampaignResult:
    seed: int
    examples: int = 0
    elapsed_s: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    clauses: Counter = field(default_factory=Counter)
    #: Divergences the candidate showed on every re-run, by signature.
    groups: Dict[str, Group] = field(default_factory=dict)
    #: Scenarios whose outcome changed when the candidate ran them again, by first signature.
    flaky_groups: Dict[str, Group] = field(default_factory=dict)
    #: Differences the spec attributes to the two sides' Python versions (``conformance.explain``), by signature.
    version_groups: Dict[str, Group] = field(default_factory=dict)
    invalid: List[CheckResult] = field(default_factory=list)
    #: Seconds from the start of the campaign to the first divergence recorded (None: nothing diverged).
    first_divergence_s: Optional[float] = None

    @property
    def divergences(self) -> List[Group]:
        return list(self.groups.values())

    @property
    def flaky(self) -> List[Group]:
        return list(self.flaky_groups.values())

    @property
    def version_differences(self) -> List[Group]:
        return list(self.version_groups.values())


class StopGeneration(Exception):
    """Raised by a ``generate`` visitor to end generation early."""


class _BudgetSpent(Exception):
    """Raised inside the Hypothesis test to end generation."""


class Campaign:
    """Explore scenarios for one worker pair; see the module docstring.

    ``strategy`` is a Hypothesis strategy, a ``Fuzzer``, or a list of
    scenarios (checked as they are: ``replay``). ``timeout_s`` fixes the
    per-scenario deadline; by default it adapts to the machine
    (``pipeline.Deadlines``). ``stop_at_first_divergence`` ends the campaign
    at its first divergence, unshrunk (``conformance selftest`` times it).
    """

    def __init__(
        self,
        pair: Any,
        strategy: Any,
        seed: int,
        examples: Optional[int] = None,
        budget_s: Optional[float] = None,
        timeout_s: Optional[float] = None,
        strict_messages: bool = False,
        progress: Optional[Callable[[CampaignResult], None]] = None,
        stop_at_first_divergence: bool = False,
        depth: int = DEPTH,
        explainer: Optional[VersionExplainer] = None,
    ) -> None:
        self.strategy = strategy
        self.explainer = explainer
        self.examples = examples
        self.budget_s = budget_s
        self.strict = strict_messages
        self.progress = progress
        self.stop_at_first_divergence = stop_at_first_divergence
        self.pipeline = Pipeline(pair, Deadlines(timeout_s), depth)
        self.result = CampaignResult(seed)
        self._started = time.monotonic()
        self._seen: Set[int] = set()

    def run(self, shrinking: bool = True) -> CampaignResult:
        start = self._started = time.monotonic()
        generation_end = None
        if self.budget_s is not None:
            self.pipeline.end = start + self.budget_s
            generation_end = start + self.budget_s * (1.0 if self.stop_at_first_divergence else GENERATION_SHARE)
        try:
            self._generate(generation_end)
            if shrinking and not self.stop_at_first_divergence:
                self._shrink_groups()
        except OutOfTime:
            pass  # the budget is spent: what was in flight has been abandoned
        self.result.elapsed_s = time.monotonic() - start
        return self.result

    def _stopping(self) -> bool:
        return self.stop_at_first_divergence and self.result.first_divergence_s is not None

    # ---------------------------------------------------------- generate

    def _generate(self, deadline: Optional[float]) -> None:
        pipeline = self.pipeline
        out_of_time: List[OutOfTime] = []

        def visit(scenario: Scenario) -> None:
            if self._stopping():
                raise StopGeneration
            encoded = encode_scenario(scenario)
            if self._repeat(encoded):
                return
            pipeline.submit(scenario, encoded)
            try:
                while pipeline.full and not self._stopping():
                    self._finish(pipeline.next())
            except OutOfTime as exc:
                out_of_time.append(exc)
                raise StopGeneration from None

        generate(self.strategy, self.result.seed, visit, self.examples, deadline)
        if out_of_time:
            raise out_of_time[0]
        while len(pipeline) and not self._stopping():
            self._finish(pipeline.next())
        pipeline.abandon()

    def _repeat(self, encoded: bytes) -> bool:
        """Whether this scenario was checked already (then it is counted as a duplicate, not checked again).

        Both generators make the same small scenarios again and again (a
        sixth to a third of them, more for run functions): a repeat would
        only give the same result. The most frequent repeats are the first
        seen, so a bounded memory catches nearly all of them.
        """
        key = hash(encoded)
        if key in self._seen:
            self.result.examples += 1
            self.result.statuses["duplicate"] += 1
            return True
        if len(self._seen) < REMEMBERED:
            self._seen.add(key)
        return False

    def _finish(self, finished: Finished) -> None:
        """Judge and record a finished check, re-running the candidate first if it diverged."""
        scenario, ref_reply, cand_reply = finished
        if ref_reply is None or cand_reply is None:
            self.record(CheckResult(scenario, UNSUPPORTED))
            return
        search = self._search(scenario)
        result = judge(scenario, ref_reply, cand_reply, search, self.strict)
        if result.status == DIVERGED:
            confirm(result, lambda: self.pipeline.rerun_candidate(scenario), search, self.strict)
            if not result.flaky and self.explainer is not None and self.explainer.explains(result):
                result.status = VERSION
        self.record(result)

    def _search(self, scenario: Scenario) -> Callable[[List[List[str]], Dict[str, Any]], Dict[str, Any]]:
        return lambda orders, expect: self.pipeline.search(scenario, orders, expect)

    def record(self, result: CheckResult) -> None:
        """Count one check; file a divergence under its signature, a flaky scenario apart."""
        stats = self.result
        stats.examples += 1
        stats.statuses["flaky" if result.flaky else result.status] += 1
        if result.status in (SAME, DIVERGED, VERSION) and result.reference.get("calls") is not None:
            stats.clauses.update(behaviours.exercised(result.scenario, result.reference))
        if result.status == INVALID:
            stats.invalid.append(result)
        elif result.status == VERSION:
            _file(stats.version_groups, result)
        elif result.status == DIVERGED:
            if result.flaky:
                _file(stats.flaky_groups, result)
            else:
                if stats.first_divergence_s is None:
                    stats.first_divergence_s = time.monotonic() - self._started
                _file(stats.groups, result)
        if self.progress is not None:
            self.progress(stats)

    # ------------------------------------------------------------ shrink

    def _shrink_groups(self) -> None:
        for group in list(self.result.groups.values()):
            self._shrink(group)

    def _shrink(self, group: Group) -> None:
        """Shrink a group's smallest scenario; keep the result only if every re-run confirms it."""
        latest: Dict[str, CheckResult] = {}

        def still_diverges(variant: Scenario) -> bool:
            group.shrink_attempts += 1
            scenario, ref_reply, cand_reply = self.pipeline.check(variant)
            if ref_reply is None or cand_reply is None:
                return False
            result = judge(scenario, ref_reply, cand_reply, self._search(variant), self.strict)
            if result.status != DIVERGED or result.signature != group.signature:
                return False
            if self.explainer is not None and self.explainer.explains(result):
                return False  # smaller, but a difference the versions explain: not this divergence
            latest["result"] = result
            return True

        shrunk = shrink(group.smallest.scenario, still_diverges)
        found = latest.get("result")
        if found is None or found.scenario != shrunk:
            return
        confirm(found, lambda: self.pipeline.rerun_candidate(shrunk), self._search(shrunk), self.strict)
        if not found.flaky:
            group.smallest = found


def _file(groups: Dict[str, Group], result: CheckResult) -> None:
    """Count ``result`` in its signature's group, keeping the group's smallest scenario (the first of equals)."""
    signature = result.signature or "?"
    group = groups.get(signature)
    if group is None:
        primary = result.differences[0]
        groups[signature] = Group(signature, primary.clause, primary.category, 1, result)
        return
    group.count += 1
    if result.scenario.size() < group.smallest.scenario.size():
        group.smallest = result


def generate(
    strategy: Any,
    seed: int,
    visit: Callable[[Scenario], None],
    examples: Optional[int] = None,
    deadline: Optional[float] = None,
) -> None:
    """Hand ``visit`` each scenario a campaign with this seed generates, in the same order.

    ``strategy`` is a Hypothesis strategy (run with the campaign's settings),
    a ``Fuzzer`` or a list of scenarios, so that a command that only measures
    (``conformance coverage``) sees exactly the scenarios ``conformance run``
    would check (tests/test_coverage_command.py compares the two). Ends after
    ``examples`` scenarios, at ``deadline`` (a ``time.monotonic()`` value),
    or when ``visit`` raises ``StopGeneration``.
    """
    if isinstance(strategy, (Fuzzer, list, tuple)):
        source = strategy.scenarios(seed) if isinstance(strategy, Fuzzer) else iter(strategy)
        for made, scenario in enumerate(source):
            if (examples is not None and made >= examples) or (deadline is not None and time.monotonic() > deadline):
                return
            try:
                visit(scenario)
            except StopGeneration:
                return
        return
    stopped: List[bool] = []

    @settings(
        max_examples=examples if examples is not None else 10**9,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def explore(scenario: Scenario) -> None:
        # Hypothesis replays the example that ended generation: keep refusing it.
        if stopped or (deadline is not None and time.monotonic() > deadline):
            raise _BudgetSpent
        try:
            visit(scenario)
        except StopGeneration:
            stopped.append(True)
            raise _BudgetSpent from None

    try:
        explore()
    except _BudgetSpent:
        pass


def replay(
    pair: Any,
    scenarios: List[Scenario],
    timeout_s: Optional[float] = None,
    strict_messages: bool = False,
    explainer: Optional[VersionExplainer] = None,
) -> CampaignResult:
    """Check saved scenarios, re-running each divergence (no generation, no shrinking)."""
    campaign = Campaign(
        pair, list(scenarios), seed=0, timeout_s=timeout_s, strict_messages=strict_messages, explainer=explainer
    )
    return campaign.run(shrinking=False)


__all__ = ["UNSUPPORTED", "Campaign", "CampaignResult", "Group", "StopGeneration", "generate", "replay"]
