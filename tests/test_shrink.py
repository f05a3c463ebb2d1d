"""The shrinker: it keeps the divergence, only ever proposes valid scenarios, and reaches a minimum."""

from __future__ import annotations

from hypothesis import given, settings

from conformance.scenario import (
    AsyncGen,
    Close,
    CloseLoop,
    CloseRunner,
    ConstructPositional,
    GetLoop,
    Group,
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Run,
    RunnerConfig,
    Scenario,
    Sigint,
    SigintWait,
    Spawn,
    TaskGraph,
    TaskSpec,
    Timeout,
    Yield,
    from_json,
)
from conformance.shrink import shrink, variants
from strategies import scenarios


def has_sigint(scenario: Scenario) -> bool:
    return any(
        isinstance(step, Sigint) for run in scenario.runs() for task in run.main.tasks for step in task.all_steps()
    )


def test_shrinks_to_the_one_step_that_matters():
    noisy = Scenario(
        RunnerConfig("close", debug=True, loop_factory=True),
        (
            GetLoop(),
            Run(
                TaskGraph(
                    (
                        TaskSpec((Spawn(1), Yield(), Spawn(2), Yield()), OnCancel("swallow", 3)),
                        TaskSpec((Yield(), Raise("RuntimeError", "x")), finally_steps=(Yield(),)),
                        TaskSpec((Yield(), Sigint(), Yield())),
                    )
                ),
                context="fresh",
            ),
            Close(),
        ),
    )
    smallest = shrink(noisy, has_sigint)
    assert has_sigint(smallest)
    assert smallest == Scenario(RunnerConfig("with"), (Run(TaskGraph((TaskSpec((Sigint(),)),))),))


def test_shrink_keeps_the_original_when_nothing_simpler_diverges():
    scenario = Scenario(RunnerConfig("with"), (Run(TaskGraph((TaskSpec((Sigint(),)),))),))
    assert shrink(scenario, has_sigint) == scenario


def test_attempt_budget_is_respected():
    calls = []

    def never(s: Scenario) -> bool:
        calls.append(s)
        return False

    big = Scenario(RunnerConfig("close"), tuple(GetLoop() for _ in range(10)))
    shrink(big, never, max_attempts=3)
    assert len(calls) == 3


@settings(max_examples=40, deadline=None)
@given(scenarios("runner"))
def test_every_variant_of_a_generated_scenario_is_valid_or_skipped(scenario):
    for variant in variants(scenario):
        try:
            from_json(variant.to_json())
        except Exception:
            continue  # shrink() skips invalid variants; it must never call the predicate on them
        assert variant.size() <= scenario.size() or variant.runner != scenario.runner


def has_step(kind: type):
    return lambda scenario: any(
        isinstance(step, kind) for run in scenario.runs() for task in run.main.tasks for step in task.all_steps()
    )


def test_groups_timeouts_and_generator_finally_blocks_open_up_and_simplify():
    """Steps that hold steps give way to what they hold; the runner's SIGINT handler and thread to the defaults."""
    noisy = Scenario(
        RunnerConfig("with", sigint_handler="custom"),
        (
            Run(
                TaskGraph(
                    (
                        TaskSpec(
                            (
                                Group("taskgroup", (1, 2), catch=True, steps=(Timeout("expired", True, (Sigint(),)),)),
                                AsyncGen((Yield(), Raise("ValueError", "agen"))),
                            )
                        ),
                        TaskSpec((Yield(), Raise("ValueError", "a"))),
                        TaskSpec((Group("wait_for", (3,), deadline="expired", catch=True),)),
                        TaskSpec((Yield(),)),
                    )
                )
            ),
        ),
    )
    assert shrink(noisy, has_sigint) == Scenario(RunnerConfig("with"), (Run(TaskGraph((TaskSpec((Sigint(),)),))),))
    kept_group = shrink(noisy, has_step(Group))
    assert kept_group == Scenario(calls=(Run(TaskGraph((TaskSpec((Group("gather", (1,)),)), TaskSpec()))),))


def test_an_outside_sigint_becomes_a_plain_one_and_options_their_defaults():
    scenario = Scenario(
        RunnerConfig("close", thread="other"),
        (Run(TaskGraph((TaskSpec((SigintWait(), NestedRun("run"))),))),),
    )
    assert Sigint() in [
        step for variant in variants(scenario) for run in variant.runs() for step in run.main.tasks[0].steps
    ]
    simplest = shrink(scenario, has_step(NestedRun))
    assert simplest == Scenario(calls=(Run(TaskGraph((TaskSpec((NestedRun("runner"),)),))),))


def test_loop_hooks_go_back_to_their_defaults_and_new_steps_to_yields():
    scenario = Scenario(
        RunnerConfig("close", True, loop_fails="set_debug", task_factory="legacy"),
        (
            ConstructPositional(),
            CloseLoop(),
            Run(TaskGraph((TaskSpec((InterruptMain(), CloseRunner(), Raise("ValueError"))),))),
        ),
    )
    simplest = shrink(scenario, has_step(Raise))
    assert simplest == Scenario(calls=(Run(TaskGraph((TaskSpec((Raise("ValueError"),)),))),))
    kept = shrink(scenario, lambda s: s.runner.task_factory == "legacy" and has_step(CloseRunner)(s))
    assert kept == Scenario(RunnerConfig(task_factory="legacy"), (Run(TaskGraph((TaskSpec((CloseRunner(),)),))),))
