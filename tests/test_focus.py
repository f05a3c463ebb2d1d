"""Foci (``conformance.focus``): what each feature adds to a task graph, and that the result stays valid."""

from __future__ import annotations

from conformance.focus import MAX_GRAPH_TASKS, SPAWNED_AT_CLOSE_LENGTH, Focus, focused, without_executors
from conformance.scenario import (
    Cancel,
    CloseRunner,
    Executor,
    GetVar,
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Run,
    Scenario,
    SetSigintHandler,
    SetVar,
    Sigint,
    Spawn,
    StopLoop,
    TaskGraph,
    TaskSpec,
    Timeout,
    With,
    Yield,
    from_json,
)

GRAPH = TaskGraph((TaskSpec((Spawn(1), Raise("ValueError")), finally_steps=(Yield(),)), TaskSpec((Yield(),))))


def valid(graph: TaskGraph) -> bool:
    scenario = Scenario(calls=(Run(graph),))
    return from_json(scenario.to_json()) == scenario


def test_no_focus_changes_nothing_and_only_a_sigint_focus_can_ask_for_two_runs():
    assert focused(GRAPH, Focus()) == (GRAPH, False)
    assert not Focus().two_runs and Focus(sigint=(Sigint(), None, None, False, True)).two_runs


def test_a_sigint_comes_first_maybe_in_a_block_and_again_in_the_handler():
    graph, _ = focused(GRAPH, Focus(sigint=(Sigint(), None, None, False, False)))
    assert graph.tasks[0].steps == (Sigint(), Yield()) + GRAPH.tasks[0].steps and graph.tasks[1:] == GRAPH.tasks[1:]
    graph, _ = focused(GRAPH, Focus(sigint=(InterruptMain(), ("expired", True), Sigint(), True, True)))
    main = graph.tasks[0]
    assert main.steps[0] == Timeout("expired", True, (Cancel(0), InterruptMain(), Yield())), "cancelled by itself too"
    assert main.on_cancel == OnCancel("cleanup", steps=(Sigint(), Yield())), "the second one, while handling the first"
    assert valid(graph)


def test_a_second_sigint_comes_before_the_cleanup_main_had():
    graph = TaskGraph((TaskSpec(on_cancel=OnCancel("cleanup", steps=(Raise("ValueError"),))),))
    main = focused(graph, Focus(sigint=(Sigint(), None, Sigint(), False, False)))[0].tasks[0]
    assert main.on_cancel.steps == (Sigint(), Yield(), Raise("ValueError"))


def test_main_spawns_the_leftovers_first_and_starts_its_finally_block_with_the_handler_and_the_close():
    focus = Focus(
        sigint=(Sigint(), None, None, False, True),
        leftovers=((3, True, True, Raise("SystemExit")), (4, False, False, None)),
        context=True,
        nested=NestedRun("run"),
        set_handler=True,
        close_runner=True,
    )
    graph, spawns_at_close = focused(GRAPH, focus)
    main = graph.tasks[0]
    assert main.steps[:10] == (
        Spawn(2),
        Yield(),
        Spawn(4),
        Yield(),
        GetVar("a"),
        SetVar("a", "main"),
        NestedRun("run"),
        Sigint(),
        Yield(),
        Spawn(1),
    )
    assert main.finally_steps == (SetSigintHandler(), CloseRunner(), Yield())
    first, spawned, second = graph.tasks[2:]
    assert first == TaskSpec((Yield(),) * 3, OnCancel("cleanup", steps=(Spawn(3), Yield(), Raise("SystemExit"))))
    assert spawned == TaskSpec((Yield(),) * SPAWNED_AT_CLOSE_LENGTH)
    assert second == TaskSpec((Yield(),) * 4, OnCancel("cleanup"))
    assert spawns_at_close and valid(graph)


def test_a_graph_with_no_room_left_gets_no_leftover_and_one_with_room_for_one_gets_no_spawn():
    full = TaskGraph((TaskSpec(tuple(Spawn(k) for k in range(1, MAX_GRAPH_TASKS))),) + (TaskSpec(),) * 5)
    assert focused(full, Focus(leftovers=((3, True, False, None),))) == (full, False)
    almost = TaskGraph(full.tasks[:-1])
    almost = TaskGraph((TaskSpec(full.tasks[0].steps[:-1]),) + almost.tasks[1:])
    graph, spawns = focused(almost, Focus(leftovers=((3, True, False, StopLoop()),)))
    assert len(graph.tasks) == MAX_GRAPH_TASKS and not spawns
    assert graph.tasks[-1].on_cancel.steps == (StopLoop(),) and valid(graph)


def test_without_executors_replaces_every_executor_step_even_nested_and_in_with_blocks():
    graph = TaskGraph(
        (TaskSpec((Executor(), Timeout(steps=(Executor(False),))), OnCancel("cleanup", steps=(Executor(),))),)
    )
    calls = without_executors((With((Run(graph),)), Run(graph)))
    expected = TaskGraph((TaskSpec((Yield(), Timeout(steps=(Yield(),))), OnCancel("cleanup", steps=(Yield(),))),))
    assert calls == (With((Run(expected),)), Run(expected))
