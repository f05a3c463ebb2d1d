"""Shrinking: reduce a divergent scenario to a minimal one that diverges the same way.

A greedy structural reducer, in the spirit of delta debugging: it proposes
simpler variants of the scenario (fewer calls, fewer tasks, fewer steps,
plainer options), keeps the first variant that still shows the same
divergence signature, and starts again until no variant does or the attempt
budget is spent. The result is 1-minimal with respect to these edits.

It works on our own model rather than on Hypothesis's choice sequence, so it
shrinks scenarios from any source (Hypothesis, the seeded fuzzer, a saved
file) and every variant it tries is itself a valid scenario.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterator, List, Optional, Tuple

from conformance.scenario import (
    AsyncGen,
    Await,
    Call,
    Cancel,
    Executor,
    Group,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    Scenario,
    ScenarioError,
    SetVar,
    SetVarCall,
    Sigint,
    SigintWait,
    Spawn,
    Step,
    TaskGraph,
    TaskSpec,
    Timeout,
    With,
    Yield,
    from_json,
    nested_steps,
    spawned_by,
    with_nested_steps,
)


def shrink(
    scenario: Scenario,
    still_diverges: Callable[[Scenario], bool],
    max_attempts: int = 500,
    deadline: Optional[float] = None,
) -> Scenario:
    """The smallest variant of ``scenario`` found for which ``still_diverges`` holds."""
    attempts = 0
    improved = True
    while improved:
        improved = False
        for variant in variants(scenario):
            if attempts >= max_attempts or (deadline is not None and time.monotonic() > deadline):
                return scenario
            if not _valid(variant) or variant.size() > scenario.size() or variant == scenario:
                continue
            attempts += 1
            if still_diverges(variant):
                scenario = variant
                improved = True
                break
    return scenario


def _valid(scenario: Scenario) -> bool:
    try:
        return from_json(scenario.to_json()) == scenario
    except ScenarioError:
        return False


def variants(scenario: Scenario) -> Iterator[Scenario]:
    """Simpler scenarios, the biggest cuts first."""
    for calls in _call_variants(scenario.calls, scenario.runner.mode):
        yield dataclasses.replace(scenario, calls=calls)
    config = scenario.runner
    for simpler in (
        dataclasses.replace(config, debug=None),
        dataclasses.replace(config, loop_factory=False),
        dataclasses.replace(config, mode="with") if config.mode == "close" else config,
        dataclasses.replace(config, sigint_handler="default"),
        dataclasses.replace(config, thread="main"),
        dataclasses.replace(config, loop_fails="never"),
        dataclasses.replace(config, task_factory="none"),
    ):
        if simpler != config:
            yield dataclasses.replace(scenario, runner=simpler)


def _call_variants(calls: Tuple[Call, ...], mode: str) -> Iterator[Tuple[Call, ...]]:
    # Remove one call (never the only call of mode "run").
    if mode != "run" or len(calls) > 1:
        for index in range(len(calls)):
            yield calls[:index] + calls[index + 1 :]
    # Flatten a nested `with`, then simplify inside each call.
    for index, call in enumerate(calls):
        if isinstance(call, With):
            yield calls[:index] + call.calls + calls[index + 1 :]
            for inner in _call_variants(call.calls, mode):
                yield calls[:index] + (With(inner),) + calls[index + 1 :]
        elif isinstance(call, Run):
            if call.context != "runner":
                yield calls[:index] + (dataclasses.replace(call, context="runner"),) + calls[index + 1 :]
            for graph in _graph_variants(call.main):
                yield calls[:index] + (dataclasses.replace(call, main=graph),) + calls[index + 1 :]
        elif isinstance(call, SetVarCall) and call.value is not None:
            yield calls[:index] + (SetVarCall(call.var, None),) + calls[index + 1 :]


def _graph_variants(graph: TaskGraph) -> Iterator[TaskGraph]:
    for victim in range(len(graph.tasks) - 1, 0, -1):
        yield _without_task(graph, victim)
    for leaf in range(len(graph.tasks) - 1, 0, -1):
        inlined = _inline_task(graph, leaf)
        if inlined is not None:
            yield inlined
    for index, task in enumerate(graph.tasks):
        for simpler in _task_variants(task):
            yield TaskGraph(graph.tasks[:index] + (simpler,) + graph.tasks[index + 1 :])


def _without_task(graph: TaskGraph, victim: int) -> TaskGraph:
    """Drop a task, its descendants, and every step that names one of them.

    A group loses the dropped children; a group left with none goes, and a
    ``TaskGroup``'s body stays where the group was.
    """
    doomed = {victim}
    changed = True
    while changed:
        changed = False
        for index, task in enumerate(graph.tasks):
            if index in doomed:
                continue
            spawner = any(set(spawned_by(s)) & doomed for s in task.all_steps())
            if spawner and index != 0 and _spawned_only_by_doomed(graph, index, doomed):
                doomed.add(index)
                changed = True
    keep = [i for i in range(len(graph.tasks)) if i not in doomed]
    renumber = {old: new for new, old in enumerate(keep)}

    def fix(steps: Tuple[Step, ...]) -> Tuple[Step, ...]:
        out: List[Step] = []
        for step in steps:
            step = with_nested_steps(step, fix(nested_steps(step)))
            if isinstance(step, Group):
                tasks = tuple(renumber[t] for t in step.tasks if t in renumber)
                if tasks:
                    out.append(dataclasses.replace(step, tasks=tasks))
                else:
                    out.extend(step.steps)
                continue
            target = getattr(step, "task", None)
            if target is None:
                out.append(step)
            elif target in renumber:
                out.append(dataclasses.replace(step, task=renumber[target]))
        return tuple(out)

    tasks = []
    for old in keep:
        task = graph.tasks[old]
        on_cancel = dataclasses.replace(task.on_cancel, steps=fix(task.on_cancel.steps))
        tasks.append(TaskSpec(fix(task.steps), on_cancel, fix(task.finally_steps)))
    return TaskGraph(tuple(tasks))


def _inline_task(graph: TaskGraph, leaf: int) -> Optional[TaskGraph]:
    """Replace the step spawning a childless task by that task's own steps.

    What the child did now happens in its parent: a different program, but a
    simpler one, and often still diverging the same way (a SIGINT raised by a
    child is a SIGINT raised by main). Only a task started by a ``spawn`` step
    is inlined (a group's children are dropped or simplified instead).
    """
    child = graph.tasks[leaf]
    if any(spawned_by(s) for s in child.all_steps()):
        return None
    if any(isinstance(s, Group) and leaf in s.tasks for task in graph.tasks for s in task.all_steps()):
        return None

    def splice(steps: Tuple[Step, ...]) -> Tuple[Step, ...]:
        out: list = []
        for step in steps:
            if isinstance(step, Spawn) and step.task == leaf:
                out.extend(child.steps)
            else:
                out.append(with_nested_steps(step, splice(nested_steps(step))))
        return tuple(out)

    tasks = tuple(
        TaskSpec(
            splice(t.steps), dataclasses.replace(t.on_cancel, steps=splice(t.on_cancel.steps)), splice(t.finally_steps)
        )
        for t in graph.tasks
    )
    # The child's steps are now in its parent; dropping the (unspawned) child
    # also drops every await or cancel that named it.
    return _without_task(TaskGraph(tasks[:leaf] + (TaskSpec(),) + tasks[leaf + 1 :]), leaf)


def _spawned_only_by_doomed(graph: TaskGraph, index: int, doomed: set) -> bool:
    """Whether task ``index`` is spawned from a doomed task (so it would be orphaned)."""
    for parent, task in enumerate(graph.tasks):
        if any(index in spawned_by(s) for s in task.all_steps()):
            return parent in doomed
    return True


def _task_variants(task: TaskSpec) -> Iterator[TaskSpec]:
    if task.on_cancel != OnCancel():
        yield dataclasses.replace(task, on_cancel=OnCancel())
    if task.finally_steps:
        yield dataclasses.replace(task, finally_steps=())
    for field in ("steps", "finally_steps"):
        for steps in _step_list_variants(getattr(task, field)):
            yield dataclasses.replace(task, **{field: steps})
    if task.on_cancel.action == "cleanup":
        for steps in _step_list_variants(task.on_cancel.steps):
            yield dataclasses.replace(task, on_cancel=dataclasses.replace(task.on_cancel, steps=steps))
    if task.on_cancel.action == "swallow" and task.on_cancel.value is not None:
        yield dataclasses.replace(task, on_cancel=OnCancel("swallow"))


def _step_list_variants(steps: Tuple[Step, ...]) -> Iterator[Tuple[Step, ...]]:
    # Halves first (fast on long lists), then single steps; a step that spawns
    # stays (the task it starts is removed as a whole instead).
    if len(steps) >= 4:
        half = len(steps) // 2
        spawns = lambda chunk: tuple(s for s in chunk if spawned_by(s))  # noqa: E731
        yield steps[:half] + spawns(steps[half:])
        yield spawns(steps[:half]) + steps[half:]
    for index, step in enumerate(steps):
        if not spawned_by(step):
            yield steps[:index] + steps[index + 1 :]
    for index, step in enumerate(steps):
        for simpler in _step_replacements(step):
            yield steps[:index] + simpler + steps[index + 1 :]


def _step_replacements(step: Step) -> Iterator[Tuple[Step, ...]]:
    """What can stand in for one step: simpler steps (several, when a step holding steps is opened up)."""
    if isinstance(step, Group):
        # A plain spawn instead of a group of one, then a plainer group, then a smaller body.
        if len(step.tasks) == 1:
            yield (Spawn(step.tasks[0]),) + step.steps
        if step.how == "taskgroup" and step.steps:
            yield (dataclasses.replace(step, steps=()),) + step.steps
        plain = Group("gather", step.tasks, steps=())
        if step.how != "gather":
            yield (plain,) + step.steps
        elif step != plain:
            yield (plain,)
        if step.catch and step.how != "wait":
            yield (dataclasses.replace(step, catch=False),)
    elif isinstance(step, Timeout):
        yield step.steps
        if step != Timeout(steps=step.steps):
            yield (Timeout(steps=step.steps),)
    elif isinstance(step, AsyncGen) and step.finally_steps:
        yield (AsyncGen(),)
    elif isinstance(step, SigintWait):
        yield (Sigint(),)
    elif isinstance(step, NestedRun) and step.how != "runner":
        yield (NestedRun("runner"),)
    for simpler in _step_variants(step):
        yield (simpler,)
    inner = nested_steps(step)
    for steps in _step_list_variants(inner):
        yield (with_nested_steps(step, steps),)


def _step_variants(step: Step) -> Iterator[Step]:
    """One simpler step for a step that holds no steps (a Yield in the end)."""
    if isinstance(step, Cancel) and step.msg is not None:
        yield Cancel(step.task)
    elif isinstance(step, Await) and step.catch:
        yield Await(step.task)
    elif isinstance(step, Raise):
        if step.arg is not None:
            yield Raise(step.exc)
        if step.exc != "ValueError":
            yield Raise("ValueError", step.arg)
    elif isinstance(step, Return) and step.value is not None:
        yield Return()
    elif isinstance(step, SetVar) and step.value is not None:
        yield SetVar(step.var)
    elif isinstance(step, Executor) and not step.wait:
        yield Executor(True)
    elif not isinstance(step, (Yield, Spawn, Group, Timeout)) and not nested_steps(step):
        yield Yield()
