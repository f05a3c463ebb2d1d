"""Clause evidence (``conformance.behaviours``) rests on what the reference did, not on what a scenario asked for.

Each test runs one scenario through the reference in this process and checks
that a clause is credited when the observation shows the behaviour, and not
when the scenario only contains the step that could have caused it.
"""

from __future__ import annotations

import json

from conformance.behaviours import exercised
from conformance.interpreter import execute
from conformance.scenario import loads
from conformance.targets import load_target


def clauses(scenario: dict, version=(3, 12), target: str = "reference") -> set:
    loaded = loads(json.dumps({"schema": 1, **scenario}))
    reference = load_target(target)
    reference.options = {"version": version}
    return exercised(loaded, execute(loaded, reference), version)


def task(*steps, on_cancel=None) -> dict:
    spec = {"steps": list(steps)}
    if on_cancel is not None:
        spec["on_cancel"] = on_cancel
    return spec


YIELD = {"op": "yield"}
SIGINT = {"op": "sigint"}


def spawn(n: int) -> dict:
    return {"op": "spawn", "task": n}


def run(*tasks) -> dict:
    return {"call": "run", "main": {"tasks": list(tasks)}}


def test_a_sigint_while_main_is_pending_is_s1_and_one_after_it_is_done_is_s2():
    pending = clauses({"runner": {"mode": "with"}, "calls": [run(task(SIGINT, YIELD))]})
    assert {"S-1", "R-6", "R-10", "R-11"} <= pending and "S-2" not in pending
    # The child raises SIGINT only after the main task has returned: the handler raises at once.
    done = clauses({"runner": {"mode": "with"}, "calls": [run(task(spawn(1)), task(SIGINT))]})
    assert "S-2" in done and not {"S-1", "R-10"} & done


def test_a_second_run_with_its_own_first_sigint_is_r8():
    twice = clauses({"runner": {"mode": "with"}, "calls": [run(task(SIGINT, YIELD)), run(task(SIGINT, YIELD))]})
    once = clauses({"runner": {"mode": "with"}, "calls": [run(task(YIELD)), run(task(SIGINT, YIELD))]})
    assert "R-8" in twice and "R-8" not in once


def test_only_a_task_still_pending_at_close_is_a_leftover():
    slow = task(YIELD, YIELD, YIELD)
    # Left pending by the first run, the child finishes during the second: the close finds nothing.
    later = run(task(YIELD, YIELD, YIELD))
    finished = clauses({"runner": {"mode": "with"}, "calls": [run(task(spawn(1)), slow), later]})
    assert not {"K-1", "K-2"} & finished
    left = clauses({"runner": {"mode": "with"}, "calls": [run(task(spawn(1)), slow)]})
    assert {"K-1", "K-2", "C-2"} <= left


def test_a_leftover_raising_while_closing_in_mode_run_is_k6_not_r12():
    exits = task(YIELD, YIELD, on_cancel={"action": "cleanup", "steps": [{"op": "raise", "exc": "SystemExit"}]})
    found = clauses({"runner": {"mode": "run"}, "calls": [run(task(spawn(1)), exits)]}, target="reference.run")
    assert {"K-6", "C-4", "A-3"} <= found and "R-12" not in found
    during_run = clauses({"runner": {"mode": "run"}, "calls": [run(task({"op": "raise", "exc": "SystemExit"}))]})
    assert "R-12" in during_run and "K-6" not in during_run


def test_r14_clauses_need_the_reference_imitating_3_14():
    awaitable = {"runner": {"mode": "with"}, "calls": [{"call": "run_object", "object": "awaitable"}]}
    assert {"R14-3", "R14-4"} <= clauses(awaitable, version=(3, 14))
    older = clauses(awaitable, version=(3, 13))
    assert "R-1" in older and not {c for c in older if c.startswith("R14-")}


def test_closing_twice_is_c1_and_a_nested_enter_on_an_open_runner_is_e2():
    found = clauses({"runner": {"mode": "with"}, "calls": [{"call": "with", "calls": [{"call": "get_loop"}]}]})
    assert {"E-1", "E-2", "E-3", "C-1", "G-1"} <= found
    fresh = clauses({"runner": {"mode": "close"}, "calls": [{"call": "with", "calls": []}]})
    assert "E-2" not in fresh


def test_a_sigint_reaching_the_programs_own_handler_is_r6_and_never_s1():
    for handler in ("custom", "ignored"):
        found = clauses({"runner": {"mode": "with", "sigint_handler": handler}, "calls": [run(task(SIGINT, YIELD))]})
        assert "R-6" in found and not {"S-1", "S-2", "R-10", "R-11"} & found, handler


def test_a_positional_argument_refused_by_the_constructor_is_i1():
    assert "I-1" in clauses({"runner": {"mode": "close"}, "calls": [{"call": "construct_positional"}]})
    assert "I-1" not in clauses({"runner": {"mode": "close"}, "calls": [{"call": "get_loop"}]})


def test_a_failed_first_loop_is_l7_only_once_a_later_call_initialises():
    failing = {"runner": {"mode": "close", "debug": True, "loop_fails": "set_debug"}, "calls": [{"call": "get_loop"}]}
    assert "L-7" not in clauses(failing), "no later call: nothing shows the runner stayed fresh"
    retried = {**failing, "calls": [{"call": "get_loop"}, {"call": "close"}, run(task(YIELD))]}
    assert {"L-7", "C-1"} <= clauses(retried)


def test_closing_the_runner_from_inside_its_loop_is_c6():
    inside = clauses({"runner": {"mode": "with"}, "calls": [run(task(YIELD, {"op": "close_runner"}, YIELD))]})
    assert "C-6" in inside
    # A close that a guard refused would raise too, but cancel nothing: no evidence.
    assert "C-6" not in clauses(
        {"runner": {"mode": "with"}, "calls": [run(task(YIELD, {"op": "close_runner"}, YIELD))]},
        target="conformance.mutants:CloseRefusedInsideItsLoop",
    )


def test_the_runners_handler_installed_after_the_task_factory_made_main_is_r7():
    graph = run(task(spawn(1), YIELD), task(YIELD))
    assert "R-7" in clauses({"runner": {"mode": "with", "task_factory": "custom"}, "calls": [graph]})
    assert "R-7" not in clauses({"runner": {"mode": "with"}, "calls": [graph]}), "no task factory: no evidence"
    early = {"runner": {"mode": "with", "task_factory": "custom"}, "calls": [graph]}
    assert "R-7" not in clauses(early, target="conformance.mutants:SigintHandlerInstalledBeforeMainTask")


def test_an_awaited_coroutine_failing_in_its_task_is_r14():
    awaited = {"runner": {"mode": "close"}, "calls": [{"call": "run_object", "object": "awaited"}]}
    assert "R-14" in clauses(awaited)
    assert "R-14" not in clauses(awaited, target="conformance.mutants:AwaitedCoroutineRefused")


def test_a_run_refused_by_the_loop_the_user_closed_is_r15_and_the_close_after_it_c4():
    closed = clauses({"runner": {"mode": "close"}, "calls": [{"call": "close_loop"}, run(task()), {"call": "close"}]})
    assert {"R-15", "C-4"} <= closed
    assert "R-15" not in clauses({"runner": {"mode": "close"}, "calls": [run(task()), {"call": "close"}, run(task())]})


def test_interrupt_main_reaching_the_runners_handler_is_s6():
    interrupted = clauses({"runner": {"mode": "with"}, "calls": [run(task({"op": "interrupt_main"}, YIELD))]})
    assert {"S-1", "S-6", "R-10"} <= interrupted
    assert "S-6" not in clauses({"runner": {"mode": "with"}, "calls": [run(task(SIGINT, YIELD))]})


def test_a_handler_installed_during_a_run_and_left_in_place_is_r11():
    installs = {"runner": {"mode": "with"}, "calls": [run(task({"op": "set_sigint_handler"}, YIELD))]}
    assert "R-11" in clauses(installs)
    assert "R-11" not in clauses(installs, target="conformance.mutants:DefaultHandlerRestoredOverUsers")


def test_a_leftover_stopping_the_loop_while_closing_is_r13():
    stops = task(YIELD, YIELD, on_cancel={"action": "cleanup", "steps": [{"op": "stop_loop"}]})
    assert "R-13" in clauses({"runner": {"mode": "with"}, "calls": [run(task(spawn(1), YIELD), stops)]})


def test_in_mode_run_a_sigint_explains_only_the_cancellation_of_tasks_main_awaits():
    leftover = task(YIELD, YIELD, YIELD)
    spawned = clauses({"runner": {"mode": "run"}, "calls": [run(task(spawn(1), YIELD, SIGINT, YIELD), leftover)]})
    assert {"K-1", "K-2"} <= spawned, "main never awaited it: the close cancelled it"
    awaited = task(spawn(1), YIELD, SIGINT, {"op": "await", "task": 1})
    assert not {"K-1", "K-2"} & clauses({"runner": {"mode": "run"}, "calls": [run(awaited, leftover)]})
