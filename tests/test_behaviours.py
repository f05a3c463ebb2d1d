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
