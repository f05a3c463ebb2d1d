"""Labels for what a scenario exercises, for ``hypothesis.event`` and coverage checks.

``describe`` reads a scenario statically: labels say what the program *does*,
not what a runner will make of it (an un-awaited child, for instance, is
labelled ``leftover-children`` even if it happens to finish before main).
"""

from __future__ import annotations

from typing import Dict, List, Set

from conformance.scenario import (
    Await,
    Cancel,
    Close,
    Executor,
    GetLoop,
    GetVarCall,
    Raise,
    Run,
    RunObject,
    Scenario,
    SetVarCall,
    SigintCall,
    Spawn,
    TaskGraph,
    With,
    iter_calls,
)


def describe(scenario: Scenario) -> List[str]:
    """Sorted, distinct labels such as ``mode:with``, ``call:get_loop``, ``step:sigint``, ``multi-run``.

    Families: ``mode:``, ``debug:``, ``loop_factory:``, ``call:``, ``object:``,
    ``context:``, ``tasks:`` (tasks in a graph), ``step:``, ``raise:``,
    ``executor:``, ``handler:``; and single features (see the code).
    """
    labels: Set[str] = set()
    config = scenario.runner
    labels.add(f"mode:{config.mode}")
    labels.add(f"debug:{str(config.debug).lower()}")
    labels.add(f"loop_factory:{str(config.loop_factory).lower()}")

    flat = list(iter_calls(scenario.calls))
    runs_seen = 0
    used = closed = False
    closes = 0
    for index, call in enumerate(flat):
        labels.add(f"call:{call.call}")
        later_runs = any(isinstance(c, (Run, RunObject)) for c in flat[index + 1 :])
        if isinstance(call, (Run, RunObject)):
            if closed:
                labels.add("run-after-close")
            runs_seen += 1
        if isinstance(call, RunObject):
            labels.add(f"object:{call.object}")
        if isinstance(call, Run):
            labels.add(f"context:{call.context}")
            _describe_graph(call.main, labels)
        if isinstance(call, GetLoop):
            labels.add("get_loop-after-run" if runs_seen else "get_loop-before-run")
            if closed:
                labels.add("get_loop-after-close")
        if isinstance(call, Close):
            closes += 1
            if not used:
                labels.add("close-before-first-use")
            if index + 1 < len(flat):
                labels.add("close-in-middle")
            closed = True
        if isinstance(call, (SetVarCall, GetVarCall)) and not runs_seen and later_runs:
            labels.add("driver-var-before-run")
        if isinstance(call, SigintCall) and runs_seen and later_runs:
            labels.add("sigint-between-runs")
        if isinstance(call, With):
            if config.mode == "with" or any(isinstance(c, With) for c in iter_calls(call.calls)):
                labels.add("with-reentry")
            if any(isinstance(c, With) for c in call.calls):
                labels.add("nested-with")
        if isinstance(call, (Run, RunObject, GetLoop, With)):
            used = True
    if closes > 1:
        labels.add("close-twice")
    if runs_seen > 1:
        labels.add("multi-run")
    return sorted(labels)


def _describe_graph(graph: TaskGraph, labels: Set[str]) -> None:
    tasks = graph.tasks
    labels.add(f"tasks:{len(tasks)}")
    parent: Dict[int, int] = {}
    for index, task in enumerate(tasks):
        for step in task.all_steps():
            if isinstance(step, Spawn):
                parent[step.task] = index
    if any(p != 0 for p in parent.values()):
        labels.add("grandchildren")
    for index, task in enumerate(tasks):
        labels.add(f"handler:{task.on_cancel.action}")
        if task.finally_steps:
            labels.add("finally")
        if any(isinstance(s, Spawn) for s in task.finally_steps):
            labels.add("spawn-in-finally")
        if any(isinstance(s, Spawn) for s in task.on_cancel.steps):
            labels.add("spawn-in-cleanup")
        awaited = {s.task for s in task.all_steps() if isinstance(s, Await)}
        if any(p == index and child not in awaited for child, p in parent.items()):
            labels.add("leftover-children")
        for steps in (task.steps, task.on_cancel.steps, task.finally_steps):
            spawned: Set[int] = set()
            for step in steps:
                labels.add(f"step:{step.op}")
                if isinstance(step, Spawn):
                    spawned.add(step.task)
                elif isinstance(step, Await):
                    if step.catch:
                        labels.add("await-catch")
                    if step.task not in spawned and any(s == Spawn(step.task) for s in steps):
                        labels.add("await-before-spawn")
                elif isinstance(step, Cancel):
                    if step.task == 0 and index != 0:
                        labels.add("cancel-main")
                    if step.task == index:
                        labels.add("cancel-self")
                    if parent.get(step.task) == index:
                        labels.add("cancel-child")
                    if step.msg is not None:
                        labels.add("cancel-msg")
                elif isinstance(step, Raise):
                    labels.add(f"raise:{step.exc}")
                elif isinstance(step, Executor):
                    labels.add("executor:wait" if step.wait else "executor:nowait")
