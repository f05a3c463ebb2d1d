"""A Hypothesis state machine that drives any runner through random lifecycle call sequences.

Each rule of the machine is one call a program makes on its runner (``run``,
``run`` with a non-coroutine, ``run`` whose main task calls ``run`` again from
inside the loop, ``get_loop``, ``close``, entering and leaving a nested
``with`` block) in a runner configuration drawn first (how the program holds
the runner, from which thread, ``debug``, whether a loop factory is used). A rule advances
the explicit model of ``conformance.lifecycle`` and records what the model
expects of the call: its outcome, and whether the runner's loop is then the
thread's current loop.

Scenarios never run in the driver, so the rules only build a scenario (the
scenario model has every call the lifecycle needs). At teardown the whole
sequence runs once, under the reference and the candidate in their worker
processes (``conformance.differential.check``), and is judged three ways:

* the reference must do what the model says (if not, the model or the
  reference is wrong: ``ModelMismatch``);
* the candidate must do what the model says, call by call (``LifecycleViolation``
  citing the clauses of the first call that differs);
* the candidate's whole observation must match the reference's (``LifecycleViolation``
  with the differences).

Running once per sequence instead of once per rule (re-running every prefix)
costs one round trip to the workers per example instead of one per step, and
loses nothing: every call has its own record, so the first wrong call is still
pinpointed, and Hypothesis shrinks the sequence as usual.

``lifecycle_machine(pair)`` returns the machine class for a started
``WorkerPair`` (for a test suite or a pytest plugin: ``machine.TestCase``);
``check_lifecycle(candidate)`` runs it against a ``--candidate`` spec.

Driver side: Python 3.11+.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from conformance.differential import DIVERGED, INVALID, check
from conformance.isolation import WorkerPair, WorkerProcess
from conformance.lifecycle import LOOP, NON_COROUTINES, NONE, RESULT, RUNNER, LifecycleModel, Transition
from conformance.scenario import (
    MAX_CALLS,
    Call,
    Close,
    GetLoop,
    NestedRun,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    TaskGraph,
    TaskSpec,
    With,
)
from reference.versions import NEWEST, OLDEST, Version

#: Nested ``with`` blocks the machine opens (the scenario model allows 3).
MAX_NESTING = 2
#: Per-scenario time limit in the workers.
DEFAULT_TIMEOUT_S = 10.0
#: Enough to reach every row of the model many times, quick enough for a test suite.
DEFAULT_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)


class LifecycleViolation(AssertionError):
    """The candidate did not do what the lifecycle model or the reference does."""


class ModelMismatch(AssertionError):
    """The reference did not do what the lifecycle model says: one of the two is wrong."""


@dataclass
class Expected:
    """What the model expects of one recorded call."""

    path: str
    call: str
    step: Transition
    loop_is_current: bool
    #: The value a returning ``run`` must return (R-9).
    result: Any = None
    #: The call the main task makes from inside the running loop, if any (R-2).
    inside: Optional[Transition] = None


@dataclass
class _Block:
    """A list of calls being built: the program's own, or a nested ``with`` body."""

    path: str
    runs: bool
    calls: List[Optional[Call]] = field(default_factory=list)


def _made(calls: List[Optional[Call]]) -> Tuple[Call, ...]:
    """The calls of a block whose nested blocks have all been left, so that no placeholder remains."""
    assert None not in calls
    return tuple(call for call in calls if call is not None)


def reference_version(pair: WorkerPair) -> Version:
    """The CPython version the reference worker imitates: its interpreter's, clamped (``reference.default_version``)."""
    major, minor = (int(part) for part in pair.reference.start()["python"].split(".")[:2])
    return min(max((major, minor), OLDEST), NEWEST)


def lifecycle_machine(
    pair: WorkerPair, kind: str = "runner", *, version: Optional[Version] = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> type:
    """The state machine class for ``pair`` (started, or started on first use; the caller closes it).

    ``kind`` is the candidate's: ``runner`` or ``loop`` (a loop candidate is
    always driven with its loop factory). ``version``: the CPython version the
    reference imitates, by default read from the reference worker.
    """
    if kind not in ("runner", "loop"):
        raise ValueError(f"the lifecycle applies to runner and loop candidates, not {kind!r}")
    model_version = version if version is not None else reference_version(pair)
    factories = st.just(True) if kind == "loop" else st.booleans()

    class RunnerLifecycle(RuleBasedStateMachine):
        """Random lifecycle call sequences, judged at teardown (see the module docstring)."""

        @initialize(
            mode=st.sampled_from(("with", "close")),
            thread=st.sampled_from(("main", "other")),
            loop_factory=factories,
            debug=st.sampled_from((None, False, True)),
        )
        def construct(self, mode: str, thread: str, loop_factory: bool, debug: Optional[bool]) -> None:
            self.config = RunnerConfig(mode=mode, debug=debug, loop_factory=loop_factory, thread=thread)
            self.model = LifecycleModel(model_version, loop_factory)
            self.expected: List[Expected] = []
            self.blocks = [_Block("$.calls", runs=True)]
            if mode == "with":
                self._expect("$.enter", "enter")

        # -- the calls

        @precondition(lambda self: self._room())
        @rule(value=st.integers(0, 9))
        def run(self, value: int) -> None:
            self._add(Run(TaskGraph((TaskSpec((Return(value),)),))), "run", result=value)

        @precondition(lambda self: self._room())
        @rule(value=st.integers(0, 9))
        def run_inside(self, value: int) -> None:
            main = TaskSpec((NestedRun("runner"), Return(value)))
            expected = self._add(Run(TaskGraph((main,))), "run", result=value)
            if expected is not None and expected.step.outcome.raises is None:
                expected.inside = self.model.apply("run_inside")

        @precondition(lambda self: self._room())
        @rule(obj=st.sampled_from(NON_COROUTINES))
        def run_object(self, obj: str) -> None:
            self._add(RunObject(obj), f"run_object:{obj}")

        @precondition(lambda self: self._room())
        @rule()
        def get_loop(self) -> None:
            self._add(GetLoop(), "get_loop")

        @precondition(lambda self: self._room())
        @rule()
        def close(self) -> None:
            self._add(Close(), "close")

        @precondition(lambda self: self._room() and len(self.blocks) <= MAX_NESTING)
        @rule()
        def enter(self) -> None:
            block = self.blocks[-1]
            where = f"{block.path}[{len(block.calls)}]"
            entered = block.runs and self._expect(f"{where}.enter", "enter").step.outcome.raises is None
            block.calls.append(None)  # the With call, made when the block is left
            self.blocks.append(_Block(f"{where}.calls", runs=entered))

        @precondition(lambda self: len(self.blocks) > 1)
        @rule()
        def exit(self) -> None:
            inner = self.blocks.pop()
            outer = self.blocks[-1]
            outer.calls[-1] = With(_made(inner.calls))
            if inner.runs:
                self._expect(f"{outer.path}[{len(outer.calls) - 1}].exit", "exit")

        # -- building

        def _room(self) -> bool:
            return len(self.blocks[-1].calls) < MAX_CALLS

        def _add(self, call: Call, name: str, result: Any = None) -> Optional[Expected]:
            block = self.blocks[-1]
            expected = self._expect(f"{block.path}[{len(block.calls)}]", name, result) if block.runs else None
            block.calls.append(call)
            return expected

        def _expect(self, path: str, call: str, result: Any = None) -> Expected:
            step = self.model.apply(call)
            expected = Expected(path, call.split(":", 1)[0], step, self.model.loop_is_current(), result)
            self.expected.append(expected)
            return expected

        # -- judging

        def teardown(self) -> None:
            if not hasattr(self, "model"):
                return  # construct() never ran: nothing to judge
            while len(self.blocks) > 1:
                self.exit()
            if self.config.mode == "with":
                self._expect("$.exit", "exit")
            scenario = Scenario(self.config, _made(self.blocks[0].calls))
            judge(pair, scenario, self.expected, timeout_s)

    RunnerLifecycle.__name__ = RunnerLifecycle.__qualname__ = f"RunnerLifecycle_{kind}"
    return RunnerLifecycle


def judge(pair: WorkerPair, scenario: Scenario, expected: Sequence[Expected], timeout_s: float) -> None:
    """Run ``scenario`` on both sides and hold each to the model, then the candidate to the reference."""
    result = check(pair, scenario, timeout_s)
    if result.status == INVALID:
        raise ModelMismatch(f"the reference could not run {scenario.dumps()}: {result.reference}")
    problems = mismatches(result.reference["calls"], expected)
    if problems:
        raise ModelMismatch(_explain("the reference disagrees with the lifecycle model", scenario, problems))
    if "calls" in result.candidate:
        problems = mismatches(result.candidate["calls"], expected)
        if problems:
            raise LifecycleViolation(_explain("the candidate breaks the lifecycle model", scenario, problems))
    if result.status == DIVERGED:
        differences = [
            f"{d.signature()} at {d.where}: reference {d.reference!r}, candidate {d.candidate!r}"
            for d in result.differences
        ]
        raise LifecycleViolation(_explain("the candidate diverges from the reference", scenario, differences))


def mismatches(records: Sequence[Dict[str, Any]], expected: Sequence[Expected]) -> List[str]:
    """How an observation's call records differ from the model's expectations, in call order."""
    problems = []
    loops: List[str] = []
    for index, exp in enumerate(expected):
        record = records[index] if index < len(records) else None
        if record is None or record["path"] != exp.path:
            made = "nothing" if record is None else f"{record['call']} at {record['path']}"
            problems.append(f"{exp.path} {exp.call}: the model makes this call next, the runner made {made}")
            return problems
        clauses = ", ".join(exp.step.clauses)
        outcome = _outcome_problem(record["outcome"], exp, loops)
        if outcome is not None:
            problems.append(f"{exp.path} {exp.call}: model: {exp.step.outcome}; observed: {outcome} [{clauses}]")
        if exp.inside is not None:
            inside = _inside_problem(record["log"], exp.inside)
            if inside is not None:
                problems.append(f"{exp.path} run from inside the loop: {inside} [{', '.join(exp.inside.clauses)}]")
        thread_loop = record["state"]["thread_loop"]
        if (thread_loop != "none") != exp.loop_is_current:
            said = "its loop" if exp.loop_is_current else "none"
            state_clauses = ", ".join(dict.fromkeys(exp.step.clauses + ("L-3", "L-4", "C-2")))
            problems.append(
                f"{exp.path} {exp.call}: model: the thread's current loop is then {said} "
                f"({exp.step.next_state.value}); observed: {thread_loop} [{state_clauses}]"
            )
    for record in records[len(expected) :]:
        problems.append(f"{record['path']} {record['call']}: the runner made this call, the model does not")
        break
    return problems


def _outcome_problem(outcome: Dict[str, Any], exp: Expected, loops: List[str]) -> Optional[str]:
    """The recorded outcome, described, if it is not the model's; else None. ``loops`` collects returned loops."""
    want = exp.step.outcome
    raised = outcome.get("raised")
    if raised is not None:
        observed = f"raises {raised['type']}({', '.join(map(repr, raised['args']))})"
        if want.raises is None or raised["type"] != want.raises:
            return observed
        return observed if want.message is not None and raised["args"] != [want.message] else None
    value = outcome["returned"]
    if want.raises is not None:
        return f"returns {value!r}"
    if want.returns == LOOP:
        loops.append(value)
        right = isinstance(value, str) and value.startswith("loop") and value == loops[0]
    else:
        right = value == {RUNNER: "<runner>", RESULT: exp.result, NONE: None}.get(want.returns, want.returns)
    return None if right else f"returns {value!r}"


def _inside_problem(log: Sequence[str], inside: Transition) -> Optional[str]:
    """Whether the main task's ``nested_run`` step got the model's outcome (read from the run's log)."""
    want = inside.outcome
    expected = f"nested_run runner raised {want.raises}({want.message!r})"
    said = [line.split(" ", 1)[1] for line in log if " nested_run runner " in line]
    if expected in said:
        return None
    return f"model: {want}; observed: {said[-1] if said else 'the step never ran'}"


def _explain(what: str, scenario: Scenario, problems: Sequence[str]) -> str:
    return "\n  ".join([f"{what}:", *problems, f"scenario: {scenario.dumps()}"])


def check_lifecycle(
    candidate: str,
    kind: Optional[str] = None,
    *,
    machine_settings: Optional[settings] = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Run the lifecycle machine against ``candidate`` (a ``--candidate`` spec); raises on the first failure.

    The reference is ``reference`` (a loop candidate is compared with it
    driving asyncio's own loop, as ``conformance run`` does).
    """
    worker = WorkerProcess(candidate, kind)
    try:
        found_kind = worker.start()["ready"]["kind"]
    except BaseException:
        worker.close()
        raise
    with WorkerPair("reference", worker) as pair:
        machine = lifecycle_machine(pair, found_kind, timeout_s=timeout_s)
        run_state_machine_as_test(machine, settings=machine_settings or DEFAULT_SETTINGS)
