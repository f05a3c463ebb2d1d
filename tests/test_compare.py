"""The comparison: each category of difference is named with its clause, and nothing unordered is reported.

Each test takes a real observation of a scenario, changes the one thing a
broken runner would change, and checks the primary difference.
"""

from __future__ import annotations

import copy
import signal

import pytest

from conformance.compare import CATEGORIES, compare, outcome_difference
from conformance.interpreter import execute
from conformance.scenario import (
    AsyncGen,
    Close,
    GetVar,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    Scenario,
    Sigint,
    Spawn,
    StopLoop,
    TaskGraph,
    TaskSpec,
    Timeout,
    Yield,
)
from conformance.targets import load_target


@pytest.fixture(autouse=True)
def default_sigint_handler():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def scenario_with(*tasks: TaskSpec, mode: str = "close") -> Scenario:
    calls = (Run(TaskGraph(tasks)),) + ((Close(),) if mode == "close" else ())
    return Scenario(RunnerConfig(mode), calls)


LEFTOVERS = scenario_with(
    TaskSpec((Spawn(1), Spawn(2), AsyncGen(), GetVar("a"), Return(1))),
    TaskSpec((Yield(), Yield()), OnCancel("cleanup", steps=(Yield(),))),
    TaskSpec((Yield(), Yield()), OnCancel("cleanup", steps=(Raise("ValueError", "late"),))),
)


def primary(scenario, reference, candidate):
    differences = compare(scenario, reference, candidate)
    assert differences, "the change must be noticed"
    return differences[0].category, differences[0].clause


@pytest.fixture(scope="module")
def observed():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return execute(LEFTOVERS, load_target("asyncio"))
    finally:
        signal.signal(signal.SIGINT, previous)


def test_identical_observations_have_no_difference(observed):
    assert compare(LEFTOVERS, observed, copy.deepcopy(observed)) == []


def test_result(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][0]["outcome"] = {"returned": 2}
    assert primary(LEFTOVERS, observed, changed) == ("result", "R-9")


def test_exception(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][0]["outcome"] = {"raised": {"type": "RuntimeError", "args": ["x"]}}
    assert primary(LEFTOVERS, observed, changed) == ("exception", "R-12")


def test_leftover_tasks_not_cancelled(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][1]["tasks"]["r0.t1"] = "pending"
    assert primary(LEFTOVERS, observed, changed) == ("leftover tasks", "K-1")


def test_leftover_tasks_cancelled_but_not_drained(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][1]["tasks"]["r0.t1"] = "pending (cancel requested)"
    assert primary(LEFTOVERS, observed, changed) == ("leftover tasks", "K-3")


def test_cleanup_steps_differ(observed):
    changed = copy.deepcopy(observed)
    log = changed["calls"][1]["log"]
    log.remove("r0.t1 yield")
    assert primary(LEFTOVERS, observed, changed) == ("cleanup", "K-3")


def test_cleanup_reports_differ(observed):
    changed = copy.deepcopy(observed)
    assert changed["calls"][1]["reports"], "the late ValueError is reported at shutdown (K-5)"
    changed["calls"][1]["reports"] = []
    assert primary(LEFTOVERS, observed, changed) == ("cleanup", "K-5")


def test_shutdown_order_agen_before_tasks(observed):
    changed = copy.deepcopy(observed)
    log = changed["calls"][1]["log"]
    agen_lines = [line for line in log if line.startswith("r0.g0")]
    changed["calls"][1]["log"] = agen_lines + [line for line in log if line not in agen_lines]
    assert primary(LEFTOVERS, observed, changed) == ("shutdown order", "C-2")


def test_sigint_handler_not_restored(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][0]["state"]["sigint"] = "other"
    assert primary(LEFTOVERS, observed, changed) == ("SIGINT", "R-11")


def test_sigint_outcome():
    scenario = scenario_with(TaskSpec((Sigint(), Yield())), mode="with")
    reference = execute(scenario, load_target("asyncio"))
    changed = copy.deepcopy(reference)
    changed["calls"][1]["outcome"] = {"raised": {"type": "CancelledError", "args": []}}
    assert primary(scenario, reference, changed) == ("SIGINT", "R-10")


def test_context(observed):
    changed = copy.deepcopy(observed)
    log = changed["calls"][0]["log"]
    index = log.index("r0.t0 get a -> '<unset>'")
    log[index] = "r0.t0 get a -> 1"
    assert primary(LEFTOVERS, observed, changed) == ("context", "R-4")


def test_event_loop_state(observed):
    changed = copy.deepcopy(observed)
    changed["calls"][1]["state"]["thread_loop"] = "loop0"
    assert primary(LEFTOVERS, observed, changed) == ("event-loop state", "C-2")
    changed = copy.deepcopy(observed)
    changed["end"]["loops"]["loop0"] = "open"
    assert primary(LEFTOVERS, observed, changed) == ("event-loop state", "C-2")


def test_warnings(observed):
    changed = copy.deepcopy(observed)
    changed["end"]["reports"].append(
        {"message": "Task was destroyed but it is pending!", "exception": None, "task": "r0.t1"}
    )
    assert primary(LEFTOVERS, observed, changed) == ("warnings", "K-4")


@pytest.mark.parametrize("kind", ["HANG", "CRASH"])
def test_hang_and_crash(kind):
    difference = outcome_difference({"outcome": kind, "returncode": 7})
    assert (difference.category, difference.signature()) == (kind, f"- {kind}")


def test_every_category_is_known():
    assert set(CATEGORIES) == {
        "result",
        "exception",
        "leftover tasks",
        "cleanup",
        "shutdown order",
        "SIGINT",
        "context",
        "event-loop state",
        "warnings",
        "HANG",
        "CRASH",
    }


def test_messages_written_by_the_runtime_are_not_compared_unless_strict(observed):
    changed = copy.deepcopy(observed)
    reference = copy.deepcopy(observed)
    reference["calls"][0]["outcome"] = {"raised": {"type": "RuntimeError", "args": ["Event loop is closed"]}}
    changed["calls"][0]["outcome"] = {"raised": {"type": "RuntimeError", "args": ["loop closed"]}}
    assert compare(LEFTOVERS, reference, changed) == []
    assert compare(LEFTOVERS, reference, changed, strict_messages=True)[0].category == "exception"


def test_messages_the_scenario_wrote_are_always_compared(observed):
    changed = copy.deepcopy(observed)
    log = changed["calls"][1]["log"]
    index = next(i for i, line in enumerate(log) if "ValueError('late')" in line)
    log[index] = log[index].replace("'late'", "'other'")
    assert compare(LEFTOVERS, observed, changed)


def test_cancellation_messages_are_always_compared(observed):
    changed = copy.deepcopy(observed)
    log = changed["calls"][1]["log"]
    index = log.index("r0.t1 cancelled CancelledError()")
    log[index] = "r0.t1 cancelled CancelledError('x')"
    assert primary(LEFTOVERS, observed, changed)[1] == "K-2"


def test_cancellation_messages_in_logs_are_compared_even_when_the_runtime_wrote_them(observed):
    """A CancelledError's args are behaviour (K-2), whoever wrote them; other runtime messages are not."""
    reference, changed = copy.deepcopy(observed), copy.deepcopy(observed)
    reference["calls"][1]["log"].append("r0.t9 cancelled CancelledError('from the runtime')")
    changed["calls"][1]["log"].append("r0.t9 cancelled CancelledError()")
    assert compare(LEFTOVERS, reference, changed)
    reference["calls"][1]["log"][-1] = "r0.t9 exit raised RuntimeError('Event loop is closed')"
    changed["calls"][1]["log"][-1] = "r0.t9 exit raised RuntimeError('loop closed')"
    assert compare(LEFTOVERS, reference, changed) == []


# ------------------------------------------------- task graphs, deadlines and interrupts


def observe_new(*tasks: TaskSpec, mode: str = "with", **config):
    scenario = Scenario(RunnerConfig(mode, **config), (Run(TaskGraph(tasks)),))
    return scenario, execute(scenario, load_target("asyncio"))


def test_run_that_ignores_a_stopped_loop_breaks_r13():
    scenario, reference = observe_new(TaskSpec((StopLoop(), Yield(), Return(1))))
    changed = copy.deepcopy(reference)
    changed["calls"][1]["outcome"] = {"returned": 1}
    assert primary(scenario, reference, changed) == ("exception", "R-13")


@pytest.mark.parametrize("how, clause", [("runner", "R-2"), ("run", "A-2")])
def test_a_nested_run_that_does_not_refuse_breaks_r2_or_a2(how, clause):
    scenario, reference = observe_new(TaskSpec((NestedRun(how), Return(1))))
    changed = copy.deepcopy(reference)
    log = changed["calls"][1]["log"]
    log[2] = f"r0.t0 nested_run {how} -> None"
    assert primary(scenario, reference, changed) == ("exception", clause)


def test_a_runner_that_replaces_a_custom_sigint_handler_breaks_r6():
    scenario, reference = observe_new(TaskSpec((Sigint(), Yield(), Return(1))), sigint_handler="custom")
    changed = copy.deepcopy(reference)
    changed["calls"][1]["log"].remove("sigint custom handler")
    assert primary(scenario, reference, changed) == ("SIGINT", "R-6")
    restored = copy.deepcopy(reference)
    restored["calls"][1]["state"]["sigint"] = "default"
    assert primary(scenario, reference, restored) == ("SIGINT", "R-6")


def test_sigint_inside_a_timeout_that_becomes_timeout_error_breaks_s4():
    scenario, reference = observe_new(TaskSpec((Timeout("expired", False, (Sigint(), Yield())),)))
    changed = copy.deepcopy(reference)
    changed["calls"][1]["outcome"] = {"raised": {"type": "TimeoutError", "args": []}}
    assert primary(scenario, reference, changed) == ("SIGINT", "S-4")


def test_a_handler_installed_from_another_thread_breaks_i4():
    scenario, reference = observe_new(TaskSpec((Return(1),)), thread="other")
    changed = copy.deepcopy(reference)
    changed["calls"][1]["state"]["sigint"] = "other"
    assert primary(scenario, reference, changed) == ("SIGINT", "I-4")
