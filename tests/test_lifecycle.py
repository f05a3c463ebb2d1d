"""The lifecycle model (conformance.lifecycle) and the state machine that holds runners to it.

The model is checked row by row against the clauses it restates; the machine
must pass against asyncio (as a runner and as a loop), must fail against
mutants that break lifecycle clauses, and must blame the reference when the
reference is the one that breaks the model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance.isolation import WorkerPair
from conformance.lifecycle import (
    AWAITABLE_RESULT,
    CLOSED_MESSAGE,
    INSIDE_LOOP_CALLS,
    LOOP,
    NESTED_RUN_MESSAGE,
    NON_COROUTINES,
    NONE,
    RESULT,
    RUNNER,
    RUNNER_CALLS,
    TRANSITIONS,
    LifecycleModel,
    Outcome,
    State,
    loop_is_current,
    transition,
)
from conformance.lifecycle_machine import (
    LifecycleViolation,
    ModelMismatch,
    check_lifecycle,
    lifecycle_machine,
)

SPEC = Path(__file__).resolve().parents[1] / "docs" / "spec.md"
SPEC_CLAUSES = set(re.findall(r"^\| ((?:[A-Z]|R14)-\d+) \|", SPEC.read_text(encoding="utf-8"), re.MULTILINE))
VERSIONS = ((3, 11), (3, 12), (3, 13), (3, 14))

#: A broken lifecycle shows within a handful of calls; derandomized, so that a mutant is caught every time.
QUICK = settings(
    max_examples=100,
    stateful_step_count=8,
    deadline=None,
    database=None,
    derandomize=True,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)


def model_after(*calls: str, version=(3, 11), loop_factory=False) -> LifecycleModel:
    model = LifecycleModel(version, loop_factory)
    for call in calls:
        model.apply(call)
    return model


# ---------------------------------------------------------------- the model


@pytest.mark.parametrize("version", VERSIONS)
def test_every_state_and_call_has_a_transition_citing_spec_clauses(version):
    for state in State:
        calls = list(RUNNER_CALLS) + [f"run_object:{obj}" for obj in NON_COROUTINES]
        for call in calls:
            step = transition(state, call, version)
            assert step.clauses and set(step.clauses) <= SPEC_CLAUSES, (state, call, step.clauses)
    for (_, call), step in TRANSITIONS.items():
        assert call in RUNNER_CALLS + INSIDE_LOOP_CALLS
        assert set(step.clauses) <= SPEC_CLAUSES


def test_C1_close_before_first_use_stays_created():
    model = model_after("close")
    assert model.state is State.CREATED
    assert model.apply("get_loop").outcome == Outcome(returns=LOOP)
    assert model.state is State.INITIALIZED


def test_L1_everything_but_close_refuses_once_closed():
    for call in ("run", "get_loop", "enter"):
        step = model_after("get_loop", "close").apply(call)
        assert step.outcome == Outcome(raises="RuntimeError", message=CLOSED_MESSAGE), call
        assert step.next_state is State.CLOSED
    assert model_after("get_loop", "close").apply("close").outcome == Outcome(returns=NONE)


def test_E1_E2_nested_with_inner_exit_closes_outer_exit_does_nothing():
    model = LifecycleModel((3, 12))
    assert model.apply("enter").outcome == Outcome(returns=RUNNER)
    assert model.apply("enter").next_state is State.INITIALIZED
    assert model.apply("exit").next_state is State.CLOSED
    outer = model.apply("exit")
    assert (outer.outcome, outer.next_state) == (Outcome(returns=NONE), State.CLOSED)
    assert model.apply("enter").outcome.message == CLOSED_MESSAGE


def test_G1_R3_first_get_loop_or_run_initialises():
    assert model_after("get_loop").state is State.INITIALIZED
    step = LifecycleModel((3, 13)).apply("run")
    assert (step.outcome, step.next_state) == (Outcome(returns=RESULT), State.INITIALIZED)


@pytest.mark.parametrize("version", VERSIONS[:3])
def test_R1_non_coroutine_rejected_before_anything_else_on_311_to_313(version):
    for state_calls in ((), ("get_loop",), ("get_loop", "close")):
        model = model_after(*state_calls, version=version)
        before = model.state
        step = model.apply("run_object:int")
        assert step.outcome == Outcome(raises="ValueError") and model.state is before, state_calls


def test_R1_plain_generator_runs_on_311_only():
    assert model_after(version=(3, 11)).apply("run_object:generator").outcome == Outcome(returns=NONE)
    assert model_after(version=(3, 12)).apply("run_object:generator").outcome == Outcome(raises="ValueError")


def test_R14_2_on_314_the_runner_initialises_before_looking_at_the_argument():
    model = LifecycleModel((3, 14))
    assert model.apply("run_object:int").outcome == Outcome(raises="TypeError")
    assert model.state is State.INITIALIZED
    assert model.apply("run_object:awaitable").outcome == Outcome(returns=AWAITABLE_RESULT)
    closed = model_after("get_loop", "close", version=(3, 14))
    assert closed.apply("run_object:int").outcome.message == CLOSED_MESSAGE


def test_R2_C6_calls_from_inside_the_running_loop():
    nested = transition(State.INITIALIZED, "run_inside", (3, 12))
    assert nested.outcome == Outcome(raises="RuntimeError", message=NESTED_RUN_MESSAGE)
    assert transition(State.INITIALIZED, "close_inside", (3, 12)).next_state is State.INITIALIZED
    with pytest.raises(ValueError):
        transition(State.CREATED, "run_inside", (3, 12))


def test_L3_L4_C2_the_runners_loop_is_current_only_while_initialised_without_a_factory():
    assert [loop_is_current(state, False) for state in State] == [False, True, False]
    assert not any(loop_is_current(state, True) for state in State)


# ---------------------------------------------------------------- the machine


def test_asyncio_runner_follows_the_model():
    check_lifecycle("asyncio")


def test_asyncio_loop_driven_by_asyncio_runner_follows_the_model():
    check_lifecycle("asyncio:new_event_loop", "loop", machine_settings=QUICK)


@pytest.mark.parametrize(
    "mutant",
    [
        "CloseBeforeUseCloses",
        "NestedWithOnlyOutermostCloses",
        "ClosedRunnerReopens",
        "GetLoopDoesNotInitialise",
        "NoRunningLoopCheck",
        "MainThreadOnly",
    ],
)
def test_mutants_that_break_lifecycle_clauses_fail_the_model(mutant):
    with pytest.raises(LifecycleViolation, match="the candidate breaks the lifecycle model") as failure:
        check_lifecycle(f"conformance.mutants:{mutant}", "runner", machine_settings=QUICK)
    assert "scenario: {" in str(failure.value)


def test_a_reference_that_breaks_the_model_is_blamed_as_a_model_mismatch():
    with WorkerPair("conformance.mutants:CloseBeforeUseCloses", "asyncio") as pair:
        machine = lifecycle_machine(pair, "runner", version=(3, 11))
        with pytest.raises(ModelMismatch, match="the reference disagrees with the lifecycle model"):
            run_state_machine_as_test(machine, settings=QUICK)


def test_run_candidates_have_no_lifecycle():
    with pytest.raises(ValueError, match="runner and loop"):
        lifecycle_machine(WorkerPair("reference.run", "asyncio.run"), "run")
