"""Keeping both workers busy: checks in flight, results in order, deadlines that fit the machine.

A check costs each worker about a millisecond, and the driver about as much
again to make the scenario and judge the replies (three times as much when
Hypothesis makes it). Waiting for each check before starting the next would
leave the workers idle while the driver works and the driver idle while they
do; so the driver keeps up to ``depth`` scenarios queued on both workers
(``WorkerPair.submit``) and takes the results in the order it submitted them,
which keeps a run deterministic. Measured: docs/performance.md.

Depth starts at 1 and doubles with each clean result: a candidate that hangs
or crashes on every scenario then costs one deadline per scenario, with
nothing queued behind it to wait out, retry or abandon when the run ends.

Deadlines (``Deadlines``) adapt to the machine: twenty times the 99th
percentile of recent healthy replies, at least a second, plus the grace the
harness itself gives threads a scenario leaves behind (the interpreter after
each closing call, the worker before it declares itself dirty), which is
waiting that a correct but thread-leaking candidate is entitled to.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, TypeVar

from conformance import interpreter, worker
from conformance.isolation import AdaptiveTimeout, WorkerPair
from conformance.scenario import Close, Scenario, With, iter_calls

#: The most checks in flight: enough to cover the driver's slowest step (a
#: Hypothesis draw) several times over, few enough to drain at once.
DEPTH = 8
#: Adaptive deadlines: ``FACTOR`` times the p99 of healthy replies, within ``[FLOOR_S, CAP_S]``.
FLOOR_S = 1.0
FACTOR = 20.0
CAP_S = 30.0

T = TypeVar("T")

#: One finished check: the scenario, and the reference's and candidate's replies (None when unsupported).
Finished = Tuple[Scenario, Optional[Dict[str, Any]], Optional[Dict[str, Any]]]


def grace_s(scenario: Scenario) -> float:
    """The longest the harness itself may wait for threads the scenario leaves behind."""
    closings = 1
    if scenario.runner.mode != "run":
        nested = sum(isinstance(call, (Close, With)) for call in iter_calls(scenario.calls))
        closings = nested + (scenario.runner.mode == "with")
    return worker.THREAD_GRACE_S + interpreter.THREAD_GRACE_S * closings


class Deadlines:
    """Per-scenario deadlines: ``fixed_s`` when given, else adaptive (see the module docstring)."""

    def __init__(self, fixed_s: Optional[float] = None) -> None:
        self.fixed_s = fixed_s
        self.timer = AdaptiveTimeout(floor=FLOOR_S, factor=FACTOR, default=FLOOR_S)
        self._base = FLOOR_S
        self._unseen = 0  # samples recorded since the base was last computed

    def record(self, seconds: Optional[float]) -> None:
        """A healthy reply's time (None for HANG or CRASH, which teach nothing)."""
        if seconds is not None:
            self.timer.record(seconds)
            self._unseen += 1

    def base_s(self) -> float:
        if self.fixed_s is not None:
            return self.fixed_s
        # The percentile sorts the window: redo it after every sample while there are few, then
        # after every sixteenth of the window, so that it costs no more than a fraction of a check.
        if self._unseen and self._unseen >= len(self.timer.samples) // 16:
            self._base = min(CAP_S, self.timer.current())
            self._unseen = 0
        return self._base

    def for_scenario(self, scenario: Scenario) -> float:
        return self.base_s() + grace_s(scenario)


class OutOfTime(Exception):
    """The run's end came before the result: what is in flight has been abandoned."""


@dataclass
class _Entry:
    scenario: Scenario
    #: The reference's and candidate's request ids; None when the candidate cannot run the scenario.
    ids: Optional[Tuple[int, int]]


class Pipeline:
    """Checks in flight on a ``WorkerPair``, finished in submission order.

    ``end`` (a ``time.monotonic()`` value) bounds every wait: when it passes,
    the work in flight is abandoned and ``OutOfTime`` raised.
    """

    def __init__(self, pair: WorkerPair, deadlines: Deadlines, depth: int = DEPTH, end: Optional[float] = None) -> None:
        self.pair = pair
        self.deadlines = deadlines
        self.max_depth = depth
        self.depth = 1
        self.end = end
        self._entries: deque[_Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return len(self._entries) >= self.depth

    def submit(self, scenario: Scenario, encoded: Optional[bytes] = None) -> None:
        """Queue a check (``encoded``: the scenario's ``encode_scenario``, if the caller has it).

        A scenario the candidate cannot run is finished at once, in its turn.
        """
        if not self.pair.candidate_supports(scenario):
            self._entries.append(_Entry(scenario, None))
            return
        ids = self.pair.submit(encoded or scenario, self.deadlines.for_scenario(scenario))
        self._entries.append(_Entry(scenario, ids))

    def next(self) -> Finished:
        """The oldest check, waiting for it if need be."""
        entry = self._entries[0]
        if entry.ids is None:
            self._entries.popleft()
            return entry.scenario, None, None
        replies = self._got(self.pair.collect(entry.ids, self.end))
        self._entries.popleft()
        reference, candidate = replies
        self.deadlines.record(self.pair.reference.last_elapsed)
        self.deadlines.record(self.pair.candidate.last_elapsed)
        healthy = all("observation" in r and "dirty" not in r for r in replies)
        self.depth = min(self.max_depth, self.depth * 2) if healthy else 1
        return entry.scenario, reference, candidate

    def check(self, scenario: Scenario) -> Finished:
        """One check, waited for; nothing else may be in flight."""
        if self._entries:
            raise RuntimeError("Pipeline.check with other checks in flight")
        self.submit(scenario)
        return self.next()

    def rerun_candidate(self, scenario: Scenario) -> Dict[str, Any]:
        """The candidate alone runs ``scenario`` again (after what it has queued); its reply or outcome."""
        reply = self._got(self.pair.run_candidate(scenario, self.deadlines.for_scenario(scenario), self.end))
        self.deadlines.record(self.pair.candidate.last_elapsed)
        return reply

    def search(self, scenario: Scenario, orders: List[List[str]], expect: Dict[str, Any]) -> Dict[str, Any]:
        """The reference tries cancellation orders (see ``WorkerPair.search``); a few deadlines' worth of time."""
        timeout = 4 * self.deadlines.for_scenario(scenario)
        return self._got(self.pair.search(scenario, orders, expect, timeout, self.end))

    def abandon(self) -> None:
        """Forget the checks in flight (the workers running them are replaced)."""
        self._entries.clear()
        self.pair.abandon()

    def _got(self, result: Optional[T]) -> T:
        if result is None:
            self.abandon()
            raise OutOfTime
        return result
