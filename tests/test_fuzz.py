"""The seeded fuzzer: valid scenarios only, the same ones for the same seed, every kind of part made."""

from __future__ import annotations

import asyncio
import itertools
import json
import random

import pytest

from conformance.fuzz import KINDS, NOT_GENERATED, Fuzzer
from conformance.scenario import (
    CALL_TYPES,
    LOOP_FAILURES,
    MODES,
    NON_COROUTINES,
    STEP_TYPES,
    TASK_FACTORIES,
    Run,
    RunObject,
    Spawn,
    Yield,
    from_json,
    iter_calls,
)
from conformance.targets import supports

COUNT = 1500


def made(kind: str, seed: int = 1, count: int = COUNT):
    return list(itertools.islice(Fuzzer(kind).scenarios(seed), count))


@pytest.mark.parametrize("kind", KINDS)
def test_every_scenario_is_valid_and_runnable_by_its_kind(kind):
    for scenario in made(kind):
        assert from_json(json.loads(scenario.dumps())) == scenario, scenario.dumps()
        assert supports(kind, scenario.runner.mode, scenario.runner.loop_factory), scenario.dumps()


def test_the_same_seed_gives_the_same_scenarios_and_leaves_global_random_alone():
    state = random.getstate()
    first = [s.dumps() for s in made("runner", seed=7, count=300)]
    assert random.getstate() == state
    assert first == [s.dumps() for s in made("runner", seed=7, count=300)]
    assert first != [s.dumps() for s in made("runner", seed=8, count=300)]


def _steps(scenario):
    for call in iter_calls(scenario.calls):
        if isinstance(call, Run):
            for task in call.main.tasks:
                yield from task.all_steps()


def test_every_part_of_the_model_is_made_unless_listed_as_not_generated():
    """A step kind added to the model must be made by the fuzzer too, or be listed with a reason."""
    scenarios = made("runner")
    ops = {step.op for scenario in scenarios for step in _steps(scenario)}
    calls = {type(call).call for scenario in scenarios for call in iter_calls(scenario.calls)}
    model_ops = {step_type.op for step_type in STEP_TYPES}
    assert set(NOT_GENERATED) <= model_ops, "NOT_GENERATED names a step kind the model does not have"
    assert ops == model_ops - set(NOT_GENERATED)
    assert calls == {call_type.call for call_type in CALL_TYPES}
    assert {s.runner.mode for s in scenarios} == set(MODES)
    assert {s.runner.debug for s in scenarios} == {None, False, True}
    assert {s.runner.loop_factory for s in scenarios} == {False, True}


def test_proportions_follow_the_strategies():
    """Most scenarios make one run call; the steps that end a run abruptly stay rare (as in test_strategies)."""
    scenarios = made("runner")
    runs = [len([c for c in iter_calls(s.calls) if isinstance(c, (Run, RunObject))]) for s in scenarios]
    assert 0.5 < runs.count(1) / len(scenarios) < 0.8
    steps = [step for scenario in scenarios for step in _steps(scenario)]
    ending = ("KeyboardInterrupt", "SystemExit")
    abrupt = ("sigint", "interrupt_main", "stop_loop", "close_runner")
    assert sum(step.op in abrupt or getattr(step, "exc", "") in ending for step in steps) / len(steps) < 0.1
    assert sum(step.op == "yield" for step in steps) / len(steps) > 0.2


def test_every_configuration_option_and_object_is_made_and_foci_too():
    scenarios = made("runner")
    assert {s.runner.loop_fails for s in scenarios} == set(LOOP_FAILURES)
    eager = hasattr(asyncio, "eager_task_factory")
    assert {s.runner.task_factory for s in scenarios} == {f for f in TASK_FACTORIES if f != "eager" or eager}
    assert all(s.runner.mode == "close" for s in scenarios if s.runner.loop_fails != "never")
    objects = {call.object for s in scenarios for call in iter_calls(s.calls) if isinstance(call, RunObject)}
    assert objects == set(NON_COROUTINES)
    assert sum(has_a_leftover(run) for s in scenarios for run in s.runs()) > COUNT // 10


def has_a_leftover(run: Run) -> bool:
    """A focus's leftover: main first spawns a task that only yields until ``close()`` cancels it."""
    main, *others = run.main.tasks
    return any(
        main.steps[:1] == (Spawn(k),) and task.on_cancel.action == "cleanup" and set(task.steps) == {Yield()}
        for k, task in enumerate(others, 1)
    )
