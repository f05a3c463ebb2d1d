"""The interpreter: every step kind does what the scenario says, and observations are deterministic.

These run in-process under the interpreter's own ``asyncio.Runner`` (the
worker does the same thing in a subprocess) and check the observation that
the comparison relies on.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from conformance.interpreter import UnsupportedScenario, execute, normalize_text
from conformance.scenario import (
    AsyncGen,
    Await,
    Cancel,
    Close,
    CloseLoop,
    CloseRunner,
    ConstructPositional,
    Executor,
    GetLoop,
    GetVar,
    GetVarCall,
    Group,
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    SetSigintHandler,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    SigintWait,
    Spawn,
    StopLoop,
    TaskGraph,
    TaskSpec,
    Timeout,
    Uncancel,
    With,
    Yield,
)
from conformance.targets import load_target


@pytest.fixture(autouse=True)
def default_sigint_handler():
    """A process started in the background inherits SIGINT ignored; Runner only handles Ctrl-C over the default."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def observe(*tasks: TaskSpec, mode: str = "with", calls=None, target: str = "asyncio", **config):
    if calls is None:
        calls = (Run(TaskGraph(tasks)),)
    return execute(Scenario(RunnerConfig(mode, **config), tuple(calls)), load_target(target))


def run_record(observation):
    return next(record for record in observation["calls"] if record["call"] == "run")


def test_yield_spawn_and_await_log_in_program_order():
    obs = observe(TaskSpec((Spawn(1), Yield(), Await(1), Return(7))), TaskSpec((Return(5),)))
    record = run_record(obs)
    assert record["log"] == [
        "r0.t0 start loop0 debug=False",
        "r0.t0 spawn r0.t1",
        "r0.t1 start",
        "r0.t1 return 5",
        "r0.t1 exit returned 5",
        "r0.t0 yield",
        "r0.t0 await r0.t1 -> 5",
        "r0.t0 return 7",
        "r0.t0 exit returned 7",
    ]
    assert record["outcome"] == {"returned": 7}
    assert record["tasks"] == {"r0.t0": "returned 7", "r0.t1": "returned 5"}


def test_await_with_catch_keeps_going_and_without_propagates():
    child = TaskSpec((Raise("ValueError", "boom"),))
    caught = run_record(observe(TaskSpec((Spawn(1), Await(1, catch=True), Return(1))), child))
    assert caught["outcome"] == {"returned": 1}
    assert "r0.t0 await r0.t1 raised ValueError('boom')" in caught["log"]
    propagated = run_record(observe(TaskSpec((Spawn(1), Await(1), Return(1))), child))
    raised = propagated["outcome"]["raised"]
    assert raised["type"] == "ValueError" and raised["args"] == ["boom"]
    assert raised["origin"] == "r0.t1.steps[0]", "the child's own exception object reaches run()"


@pytest.mark.parametrize("msg, seen", [(None, "CancelledError()"), ("stop", "CancelledError('stop')")])
def test_cancel_delivers_the_message(msg, seen):
    record = run_record(
        observe(TaskSpec((Spawn(1), Yield(), Cancel(1, msg), Await(1, catch=True))), TaskSpec((Yield(),)))
    )
    assert f"r0.t1 cancelled {seen}" in record["log"]
    assert "r0.t0 cancel r0.t1 -> True" in record["log"]
    assert record["tasks"]["r0.t1"] == "cancelled"


@pytest.mark.parametrize("exc", ["ValueError", "RuntimeError", "CancelledError", "SystemExit", "KeyboardInterrupt"])
def test_raise_each_kind_reaches_run(exc):
    record = run_record(observe(TaskSpec((Raise(exc, "x"),))))
    assert record["outcome"]["raised"]["type"] == exc
    assert record["outcome"]["raised"]["args"] == ["x"]


def test_on_cancel_swallow_cleanup_and_finally():
    child = TaskSpec((Yield(), Yield()), OnCancel("cleanup", steps=(Yield(), GetVar("a"))), (SetVar("a", 3),))
    record = run_record(observe(TaskSpec((Spawn(1), Yield(), Cancel(1), Await(1, catch=True))), child))
    log = record["log"]
    assert (
        log.index("r0.t1 cancelled CancelledError()")
        < log.index("r0.t1 get a -> '<unset>'")
        < log.index("r0.t1 finally")
    )
    assert record["tasks"]["r0.t1"] == "cancelled"
    swallower = TaskSpec((Yield(), Yield()), OnCancel("swallow", value=9))
    record = run_record(observe(TaskSpec((Spawn(1), Yield(), Cancel(1), Await(1))), swallower))
    assert record["tasks"]["r0.t1"] == "returned 9"


def test_first_sigint_cancels_main_and_run_raises_keyboard_interrupt():
    record = run_record(observe(TaskSpec((Yield(), Sigint(), Yield()))))
    assert record["log"][-2:] == ["r0.t0 cancelled CancelledError()", "r0.t0 exit raised CancelledError()"]
    raised = record["outcome"]["raised"]
    assert raised["type"] == "KeyboardInterrupt" and raised["context"]["type"] == "CancelledError"
    assert record["state"]["sigint"] == "default"


def test_second_sigint_raises_keyboard_interrupt_at_once():
    record = run_record(observe(TaskSpec((Sigint(), Yield()), OnCancel("cleanup", steps=(Sigint(),)))))
    assert record["log"][-1] == "r0.t0 exit raised KeyboardInterrupt()"
    assert record["outcome"]["raised"]["type"] == "KeyboardInterrupt"


def test_sigint_with_no_await_left_still_cancels_main():
    """A Task whose coroutine returns with a cancellation pending ends cancelled, so run() raises KI."""
    record = run_record(observe(TaskSpec((Sigint(), Return(4)))))
    assert record["log"][-1] == "r0.t0 exit returned 4"
    assert record["outcome"]["raised"]["type"] == "KeyboardInterrupt"
    assert record["tasks"]["r0.t0"] == "cancelled"


def test_context_is_copied_at_first_initialisation():
    """L-6: a ``with`` block initialises the runner, so a later driver-level set is not seen."""
    obs = observe(calls=(SetVarCall("a", 1), Run(TaskGraph((TaskSpec((GetVar("a"),)),)))))
    assert "r0.t0 get a -> '<unset>'" in run_record(obs)["log"]


def test_context_variables_persist_across_runs_of_one_runner():
    calls = (
        SetVarCall("a", 1),
        Run(TaskGraph((TaskSpec((GetVar("a"), SetVar("b", 2))),))),
        Run(TaskGraph((TaskSpec((GetVar("b"),)),)), context="fresh"),
        Run(TaskGraph((TaskSpec((GetVar("b"),)),))),
        GetVarCall("b"),
    )
    obs = observe(calls=calls, mode="close")
    logs = [r["log"] for r in obs["calls"] if r["call"] == "run"]
    assert "r0.t0 get a -> 1" in logs[0]
    assert "r1.t0 get b -> '<unset>'" in logs[1]
    assert "r2.t0 get b -> 2" in logs[2]
    assert obs["calls"][-1]["outcome"] == {"returned": "<unset>"}, "the runner copied the driver's context"


def test_leftover_children_are_cancelled_at_close_and_agen_finalized_after():
    main = TaskSpec((Spawn(1), AsyncGen(), Yield()))
    child = TaskSpec((Yield(), Yield(), Yield()))
    obs = observe(main, child, mode="close", calls=(Run(TaskGraph((main, child))), Close()))
    close = obs["calls"][-1]
    assert close["log"] == [
        "r0.t1 cancelled CancelledError()",
        "r0.t1 exit raised CancelledError()",
        "r0.g0 closed by GeneratorExit",
        "r0.g0 finally",
    ]
    assert close["tasks"]["r0.t1"] == "cancelled"
    assert close["state"] == {"thread_loop": "none", "sigint": "default", "threads": False}
    assert obs["end"]["loops"] == {"loop0": "closed"}
    assert obs["hints"]["pending_at_main_exit"] == ["r0.t1"]


def test_executor_work_is_joined_by_close():
    obs = observe(TaskSpec((Executor(True), Executor(False))), mode="close", calls=None)
    record = run_record(obs)
    assert "r0.t0 executor r0.e0 awaited" in record["log"]
    assert "r0.t0 executor r0.e1 ran" in record["log"]
    assert "threads" not in record["state"], "threads are only judged after a close"
    closed = observe(calls=(Run(TaskGraph((TaskSpec((Executor(False),)),))), Close()), mode="close")
    assert closed["calls"][-1]["state"]["threads"] is False
    unclosed = observe(
        calls=(Run(TaskGraph((TaskSpec((Executor(False),)),))), Close()),
        mode="close",
        target="tests.fixtures.mutants:NoExecutorShutdown",
    )
    assert unclosed["calls"][-1]["state"]["threads"] is True


def test_api_calls_and_non_coroutines():
    obs = observe(mode="close", calls=(GetLoop(), RunObject("int"), With((GetLoop(),)), Close(), GetLoop()))
    outcomes = [(r["call"], r["outcome"]) for r in obs["calls"]]
    assert outcomes[0] == ("get_loop", {"returned": "loop0"})
    assert outcomes[1][1]["raised"]["type"] in ("ValueError", "TypeError")
    assert outcomes[2] == ("enter", {"returned": "<runner>"})
    assert outcomes[-1][1]["raised"] == {"type": "RuntimeError", "args": ["Runner is closed"]}


def test_sigint_between_runs_is_a_plain_keyboard_interrupt():
    obs = observe(calls=(SigintCall(),))
    assert obs["calls"][1]["outcome"] == {"raised": {"type": "KeyboardInterrupt", "args": []}}


def test_run_after_close_warns_the_coroutine_was_never_awaited():
    obs = observe(mode="close", calls=(Close(), GetLoop(), Close(), Run(TaskGraph())))
    assert obs["calls"][-1]["outcome"]["raised"]["args"] == ["Runner is closed"]
    assert any("was never awaited" in w for w in obs["end"]["warnings"])


def test_mode_run_uses_the_run_function():
    obs = observe(TaskSpec((Return(3),)), mode="run", target="asyncio.run", debug=True)
    assert obs["calls"][0]["outcome"] == {"returned": 3}
    assert obs["calls"][0]["log"][0] == "r0.t0 start loop0 debug=True"


def test_the_reference_run_twice_gives_the_same_observation():
    tasks = (
        TaskSpec((Spawn(1), Spawn(2), Spawn(3), AsyncGen(), Executor(False), Return(1))),
        TaskSpec((Yield(), Yield()), OnCancel("cleanup", steps=(Yield(), Cancel(2)))),
        TaskSpec((Yield(),), OnCancel("swallow", 4)),
        TaskSpec((Spawn(4), Await(4)), OnCancel("cleanup", steps=(Raise("ValueError", "late"),))),
        TaskSpec(
            (Yield(), Yield()),
        ),
    )
    scenario = Scenario(RunnerConfig("close"), (Run(TaskGraph(tasks)), Close()))
    first = execute(scenario, load_target("reference"))
    assert execute(scenario, load_target("reference")) == first
    assert first["calls"][-1]["reports"][0]["message"] == "unhandled exception during asyncio.run() shutdown"


def test_normalize_text_drops_addresses_and_reprs():
    text = "a coroutine was expected, got <coroutine object f at 0x7f3a2b1c>\nmore"
    assert normalize_text(text) == "a coroutine was expected, got <…>"


# ------------------------------------------------------- task graphs, deadlines, interrupts


def log_of(*tasks: TaskSpec, **options):
    return run_record(observe(*tasks, **options))["log"]


def test_gather_logs_results_in_argument_order_and_returns_exceptions():
    record = run_record(
        observe(
            TaskSpec((Group("gather", (1, 2), return_exceptions=True), Return(0))),
            TaskSpec((Yield(), Yield(), Return(1))),
            TaskSpec((Raise("ValueError", "two"),)),
        )
    )
    assert "r0.t0 gather(return_exceptions) [r0.t1, r0.t2]" in record["log"]
    assert "r0.t0 gather(return_exceptions) -> [1, ValueError('two')]" in record["log"]
    assert record["outcome"] == {"returned": 0}


def test_gather_without_return_exceptions_raises_the_first_error_and_leaves_the_others_running():
    record = run_record(
        observe(
            TaskSpec((Group("gather", (1, 2), catch=True), Return(0))),
            TaskSpec((Yield(), Yield(), Yield())),
            TaskSpec((Raise("ValueError", "two"),)),
        )
    )
    assert "r0.t0 gather raised ValueError('two')" in record["log"]
    assert record["tasks"]["r0.t1"] in ("pending", "returned None")


def test_wait_logs_done_and_pending_by_label_never_in_set_order():
    log = log_of(
        TaskSpec((Group("wait", (1, 2, 3), return_when="first_exception"),)),
        TaskSpec((Yield(),) * 8),
        TaskSpec((Yield(), Raise("ValueError"))),
        TaskSpec((Return(3),)),
    )
    assert "r0.t0 wait(first_exception) -> done [r0.t2, r0.t3] pending [r0.t1]" in log


def test_taskgroup_cancels_the_other_children_in_creation_order_and_raises_a_group():
    record = run_record(
        observe(
            TaskSpec((Group("taskgroup", (1, 2, 3), catch=True, steps=(Yield(), Yield())), Return("after"))),
            TaskSpec((Yield(), Yield(), Yield())),
            TaskSpec((Yield(), Yield(), Yield())),
            TaskSpec((Raise("ValueError", "child"),)),
        )
    )
    log = record["log"]
    assert log.index("r0.t1 cancelled CancelledError()") < log.index("r0.t2 cancelled CancelledError()")
    assert "r0.t0 taskgroup raised ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('child')])" in log
    assert record["outcome"] == {"returned": "after"}


def test_taskgroup_error_shape_reaches_run_with_each_exception_and_its_origin():
    raised = run_record(
        observe(
            TaskSpec((Group("taskgroup", (1, 2)),)),
            TaskSpec((Raise("ValueError", "a"),)),
            TaskSpec((Raise("RuntimeError", "b"),)),
        )
    )["outcome"]["raised"]
    assert raised["type"] == "ExceptionGroup"
    assert [(e["type"], e["origin"]) for e in raised["exceptions"]] == [
        ("ValueError", "r0.t1.steps[0]"),
        ("RuntimeError", "r0.t2.steps[0]"),
    ]


def test_shield_keeps_the_child_running_when_the_waiter_is_cancelled():
    record = run_record(
        observe(
            TaskSpec((Spawn(1), Yield(), Cancel(1), Await(1, catch=True))),
            TaskSpec((Group("shield", (2,)),)),
            TaskSpec((Yield(), Yield(), Return(2))),
        )
    )
    assert "r0.t1 shield raised CancelledError()" in record["log"]
    assert record["tasks"]["r0.t1"] == "cancelled"
    assert "r0.t2 cancelled CancelledError()" not in record["log"] and record["tasks"]["r0.t2"] == "returned 2"


@pytest.mark.parametrize(
    "deadline, line",
    [("expired", "r0.t0 wait_for(expired) raised TimeoutError()"), ("never", "r0.t0 wait_for(never) -> 1")],
)
def test_wait_for_with_a_deadline_that_has_passed_or_never_comes(deadline, line):
    log = log_of(TaskSpec((Group("wait_for", (1,), deadline=deadline, catch=True),)), TaskSpec((Yield(), Return(1))))
    assert line in log
    assert ("r0.t1 start" in log) == (deadline == "never"), "an expired wait_for cancels the child before it starts"


def test_timeout_expired_turns_the_cancellation_into_timeout_error_and_never_does_nothing():
    log = log_of(
        TaskSpec((Timeout("expired", True, (Yield(), GetVar("a"))), Timeout("never", False, (Yield(),)), Return(1)))
    )
    assert log[1:4] == [
        "r0.t0 timeout(expired)",
        "r0.t0 timeout(expired) raised TimeoutError()",
        "r0.t0 timeout(never)",
    ]
    assert "r0.t0 get a -> '<unset>'" not in log
    assert log[-2:] == ["r0.t0 return 1", "r0.t0 exit returned 1"]


def test_sigint_inside_an_expired_timeout_is_a_keyboard_interrupt():
    record = run_record(observe(TaskSpec((Timeout("expired", True, (Sigint(), Yield())),))))
    assert "r0.t0 timeout(expired) raised CancelledError()" in record["log"]
    assert record["outcome"]["raised"]["type"] == "KeyboardInterrupt"


def test_uncancel_logs_the_count_and_a_swallowed_self_cancellation_lets_the_task_go_on():
    log = log_of(TaskSpec((Cancel(0), Yield(), Yield()), OnCancel("cleanup", steps=(Uncancel(), Yield(), Return(5)))))
    assert log[-4:] == ["r0.t0 uncancel -> 0", "r0.t0 yield", "r0.t0 return 5", "r0.t0 exit returned 5"]


def test_stop_loop_fails_run_and_leaves_main_for_close():
    obs = observe(mode="close", calls=(Run(TaskGraph((TaskSpec((StopLoop(), Yield())),))), Close()))
    run, close = obs["calls"]
    assert run["outcome"]["raised"]["type"] == "RuntimeError"
    assert run["log"][-1] == "r0.t0 stop_loop" and run["tasks"]["r0.t0"] == "pending"
    assert close["log"] == ["r0.t0 cancelled CancelledError()", "r0.t0 exit raised CancelledError()"]


@pytest.mark.parametrize("how", ["runner", "run"])
def test_nested_run_inside_the_loop_raises_and_never_starts_its_coroutine(how):
    obs = observe(TaskSpec((NestedRun(how), Return(1))))
    log = run_record(obs)["log"]
    assert log[1] == f"r0.t0 nested_run {how}"
    assert log[2].startswith(f"r0.t0 nested_run {how} raised RuntimeError(")
    assert "RuntimeWarning: coroutine '_nested_main' was never awaited" in obs["end"]["warnings"]


def test_nested_run_function_in_mode_run_is_asyncio_run_refusing():
    record = observe(TaskSpec((NestedRun("run"),)), mode="run", target="asyncio.run")["calls"][0]
    assert (
        "r0.t0 nested_run run raised RuntimeError('asyncio.run() cannot be called from a running event loop')"
        in (record["log"])
    )


def test_async_generator_finally_awaits_and_raises_while_shutdown_asyncgens_closes_it():
    obs = observe(
        mode="close", calls=(Run(TaskGraph((TaskSpec((AsyncGen((Yield(), Raise("ValueError", "late"))),)),))), Close())
    )
    close = obs["calls"][-1]
    assert close["log"] == [
        "r0.g0 closed by GeneratorExit",
        "r0.g0 finally",
        "r0.g0 yield",
        "r0.g0 raise ValueError('late')",
    ]
    assert close["reports"][0]["exception"] == "ValueError('late')"


def test_sigint_wait_is_released_by_a_sigint_from_another_process_while_the_loop_is_idle():
    """A child keeps the loop busy for a while; the SIGINT comes only once nothing is ready to run."""
    record = run_record(
        observe(
            TaskSpec((Spawn(1), SigintWait(), Yield()), OnCancel("cleanup", steps=(Yield(), SigintWait()))),
            TaskSpec((Yield(), Yield(), Yield())),
        )
    )
    assert record["log"] == [
        "r0.t0 start loop0 debug=False",
        "r0.t0 spawn r0.t1",
        "r0.t0 sigint_wait",
        "r0.t1 start",
        "r0.t1 yield",
        "r0.t1 yield",
        "r0.t1 yield",
        "r0.t1 exit returned None",
        "r0.t0 cancelled CancelledError()",  # the first SIGINT cancels main (S-1)
        "r0.t0 yield",
        "r0.t0 sigint_wait",
    ]
    assert record["outcome"] == {"raised": {"type": "KeyboardInterrupt", "args": []}}, "the second one raises (S-2)"


def test_custom_sigint_handler_is_left_alone_and_releases_sigint_wait():
    record = run_record(observe(TaskSpec((Sigint(), SigintWait(), Return(2))), sigint_handler="custom"))
    assert record["log"][1:6] == [
        "r0.t0 sigint",
        "sigint custom handler",
        "r0.t0 sigint_wait",
        "sigint custom handler",
        "r0.t0 sigint_wait released",
    ]
    assert record["outcome"] == {"returned": 2}
    assert record["state"]["sigint"] == "custom"


def test_ignored_sigint_is_left_alone_and_sigint_wait_is_skipped():
    record = run_record(observe(TaskSpec((Sigint(), SigintWait(), Return(2))), sigint_handler="ignored"))
    assert record["log"][2] == "r0.t0 sigint_wait skipped: SIGINT is ignored"
    assert record["outcome"] == {"returned": 2} and record["state"]["sigint"] == "SIG_IGN"


def test_a_runner_driven_from_another_thread_installs_no_sigint_handler():
    obs = observe(
        mode="close",
        thread="other",
        calls=(SetVarCall("a", 1), Run(TaskGraph((TaskSpec((GetVar("a"), Executor(True), Return(1))),))), Close()),
    )
    run, close = obs["calls"][1:]
    assert run["outcome"] == {"returned": 1} and "r0.t0 get a -> 1" in run["log"], "the driver's own context (L-6)"
    assert run["state"] == {"thread_loop": "loop0", "sigint": "default"}, "the runner thread's own current loop"
    assert close["state"]["threads"] is False, "the runner's thread is the program's, not a leftover"


def test_new_steps_that_need_python_3_11_are_refused_before_running_on_older_interpreters(monkeypatch):
    monkeypatch.delattr("asyncio.TaskGroup")
    scenario = Scenario(RunnerConfig(), (Run(TaskGraph((TaskSpec((Group("taskgroup", (1,)),)), TaskSpec()))),))
    with pytest.raises(UnsupportedScenario, match=r"\$\.calls\[0\]\.main\.tasks\[0\]\.steps\[0\]: 'taskgroup' needs"):
        execute(scenario, load_target("reference"))


def test_normalize_text_drops_the_class_owning_a_coroutine_method():
    """asyncio's and uvloop's loops name the same never-awaited method with their own class."""
    asyncio_text = normalize_text("coroutine 'BaseEventLoop.shutdown_asyncgens' was never awaited")
    assert asyncio_text == normalize_text("coroutine 'Loop.shutdown_asyncgens' was never awaited")
    assert asyncio_text != normalize_text("coroutine 'Loop.shutdown_default_executor' was never awaited")


# ------------------------------------------------- misuse, loop hooks, interrupts


def test_constructing_the_runner_class_positionally_is_refused():
    construct = observe(mode="close", calls=(ConstructPositional(),), debug=True)["calls"][0]
    assert construct["outcome"]["raised"]["type"] == "TypeError"
    assert construct["state"] == {"thread_loop": "none", "sigint": "default"}, "nothing was initialised"


def test_a_loop_the_user_closed_fails_run_but_the_runner_stays_initialised():
    obs = observe(mode="close", calls=(CloseLoop(), Run(TaskGraph((TaskSpec((Yield(),)),))), GetLoop(), Close()))
    close_loop, run, get_loop, close = obs["calls"]
    assert close_loop["outcome"] == {"returned": None} and close_loop["state"]["thread_loop"] == "loop0"
    assert run["outcome"]["raised"]["type"] == "RuntimeError" and run["log"] == [], "the task never started (R-15)"
    assert get_loop["outcome"] == {"returned": "loop0"}, "not 'Runner is closed'"
    assert close["outcome"]["raised"]["type"] == "RuntimeError" and close["state"]["thread_loop"] == "none"
    assert "RuntimeWarning: coroutine '_task' was never awaited" in obs["end"]["warnings"]


def test_an_already_awaited_coroutine_fails_in_its_task():
    record = observe(mode="close", calls=(RunObject("awaited"), Close()))["calls"][0]
    assert record["outcome"] == {"raised": {"type": "RuntimeError", "args": ["cannot reuse already awaited coroutine"]}}


def test_closing_the_runner_from_inside_its_loop_cancels_everything_and_fails():
    obs = observe(TaskSpec((Spawn(1), Yield(), CloseRunner(), Yield(), Return(1))), TaskSpec((Yield(), Yield())))
    record = run_record(obs)
    assert record["log"][4:7] == [
        "r0.t0 close_runner",
        "r0.t0 close_runner raised RuntimeError('Cannot close a running event loop')",
        "r0.t1 cancelled CancelledError()",
    ]
    assert "r0.t0 cancelled CancelledError()" in record["log"], "the calling task was cancelled too (C-6)"
    assert record["outcome"] == {"raised": {"type": "CancelledError", "args": []}}
    assert record["state"]["thread_loop"] == "none", "the thread's loop was reset all the same"
    assert set(obs["hints"]["pending_at_main_exit"]) == {"r0.t0", "r0.t1"}, "both may be cancelled in any order"


def test_interrupt_main_runs_the_sigint_handler_at_once():
    record = run_record(observe(TaskSpec((InterruptMain(), Yield()), OnCancel("cleanup", steps=(InterruptMain(),)))))
    assert record["log"] == [
        "r0.t0 start loop0 debug=False",
        "r0.t0 interrupt_main",
        "r0.t0 cancelled CancelledError()",
        "r0.t0 interrupt_main",
        "r0.t0 exit raised KeyboardInterrupt()",
    ]


def test_a_sigint_handler_installed_during_a_run_stays_and_gets_the_sigints():
    record = run_record(observe(TaskSpec((SetSigintHandler(), Sigint(), Yield(), Return(1)))))
    assert record["log"][1:4] == ["r0.t0 set_sigint_handler", "r0.t0 sigint", "sigint custom handler"]
    assert record["outcome"] == {"returned": 1} and record["state"]["sigint"] == "custom"


@pytest.mark.parametrize("factory", [False, True])
def test_a_first_loop_that_cannot_be_made_leaves_the_runner_fresh_for_the_next_call(factory):
    calls = (GetLoop(), Close(), GetLoop(), Close())
    failed, noop, retried, close = observe(mode="close", calls=calls, loop_factory=factory, loop_fails="create")[
        "calls"
    ]
    assert failed["outcome"] == {
        "raised": {"type": "RuntimeError", "args": ["loop creation failed"], "origin": "$.runner.loop_fails"}
    }
    assert noop["log"] == [] and noop["outcome"] == {"returned": None}
    assert retried["outcome"] == {"returned": "loop0"}
    assert retried["state"]["thread_loop"] == ("none" if factory else "loop0"), "made current only without a factory"
    assert close["state"]["thread_loop"] == "none"


def test_a_failing_set_debug_abandons_the_loop_and_its_successor_is_not_made_current():
    obs = observe(mode="close", calls=(GetLoop(), GetLoop(), Close()), debug=True, loop_fails="set_debug")
    failed, retried, close = obs["calls"]
    assert failed["outcome"]["raised"]["args"] == ["set_debug failed"]
    assert failed["state"]["thread_loop"] == "loop0", "the abandoned loop is the thread's current one (L-3)"
    assert retried["outcome"] == {"returned": "loop1"} and retried["state"]["thread_loop"] == "loop0"
    assert close["state"]["thread_loop"] == "none"
    assert obs["end"]["loops"] == {"loop0": "open", "loop1": "closed"}, "close() never closed the abandoned loop"


@pytest.mark.parametrize("factory", [False, True])
def test_the_task_factory_logs_each_task_with_the_sigint_handler_it_sees(factory):
    graph = (TaskSpec((Spawn(1), Yield())), TaskSpec())
    log = run_record(observe(*graph, loop_factory=factory, task_factory="custom"))["log"]
    assert log[0] == "r0.t0 task_factory context=True sigint=default", "made before the handler is installed (R-7)"
    assert "r0.t1 task_factory context=False sigint=other" in log, "the runner's handler, during the run"


def test_a_legacy_main_task_has_no_uncancel_so_a_sigint_ends_the_run_in_cancelled_error():
    record = run_record(observe(TaskSpec((Sigint(), Yield())), task_factory="legacy"))
    assert record["outcome"] == {"raised": {"type": "CancelledError", "args": []}}, "R-10: nothing to uncancel"
    uncancel = run_record(observe(TaskSpec((Uncancel(),)), task_factory="legacy"))
    assert uncancel["outcome"]["raised"] == {"type": "AttributeError", "args": ["uncancel"]}


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="eager tasks are new in Python 3.12")
def test_an_eager_task_factory_starts_children_at_once_but_not_the_main_task():
    log = run_record(observe(TaskSpec((Spawn(1), Yield())), TaskSpec((Yield(),)), task_factory="eager"))["log"]
    assert log[:5] == [
        "r0.t0 task_factory context=True sigint=default",
        "r0.t0 start loop0 debug=False",
        "r0.t0 spawn r0.t1",
        "r0.t1 task_factory context=False sigint=other",
        "r0.t1 start",
    ]


def test_an_eager_task_factory_is_refused_where_tasks_cannot_start_eagerly(monkeypatch):
    monkeypatch.delattr("asyncio.eager_task_factory", raising=False)
    with pytest.raises(UnsupportedScenario, match=r"\$\.runner\.task_factory: 'eager' needs eager tasks"):
        execute(Scenario(RunnerConfig(task_factory="eager"), (Run(),)), load_target("reference"))


def test_loop_hooks_leave_the_default_policy_behind():
    observe(TaskSpec((Yield(),)), loop_fails="never", task_factory="custom")
    assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy
