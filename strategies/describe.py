"""Labels for what a scenario exercises, for ``hypothesis.event`` and coverage checks.

``describe`` reads a scenario statically: labels say what the program *does*,
not what a runner will make of it (an un-awaited child, for instance, is
labelled ``leftover-children`` even if it happens to finish before main).
``record`` reports them to Hypothesis from a test body: each label as an
event, and the number of *interactions* (``INTERACTIONS``: two features that
meet, such as a SIGINT inside a ``TaskGroup``) as a target to maximise, which
steers generation towards the rare combinations the spec's clauses are about.
"""

from __future__ import annotations

from typing import Dict, List, Set, Tuple

from hypothesis import event, target

from conformance.scenario import (
    AsyncGen,
    Await,
    Cancel,
    Close,
    CloseLoop,
    Executor,
    GetLoop,
    GetVarCall,
    Group,
    InterruptMain,
    NestedRun,
    Raise,
    Run,
    RunObject,
    Scenario,
    SetVarCall,
    Sigint,
    SigintCall,
    SigintWait,
    Spawn,
    Step,
    StopLoop,
    TaskGraph,
    Timeout,
    Uncancel,
    With,
    iter_calls,
    nested_steps,
    spawned_by,
    walk_steps,
)

#: Labels that say two features meet; ``record`` makes Hypothesis look for more of them.
INTERACTIONS = frozenset(
    {
        "sigint-in-timeout",
        "sigint-in-taskgroup",
        "sigint-and-cancel-main",
        "sigint-twice",
        "sigint-swallowed",
        "sigint-in-cleanup",
        "cancel-twice",
        "uncancel-in-handler",
        "stop_loop-in-cleanup",
        "base-exception-in-child",
        "taskgroup-child-errors",
        "agen-finally-awaits",
        "sigint-handler-and-sigint",
        "thread-and-runs",
        "sigint-without-uncancel",
        "close-loop-then-run",
    }
)
#: Steps that raise a SIGINT, or wait for one from outside.
_SIGNALS = (Sigint, SigintWait, InterruptMain)


def describe(scenario: Scenario) -> List[str]:
    """Sorted, distinct labels such as ``mode:with``, ``call:get_loop``, ``step:sigint``, ``multi-run``.

    Families: ``mode:``, ``debug:``, ``loop_factory:``, ``sigint_handler:``,
    ``thread:``, ``loop_fails:``, ``task_factory:``, ``call:``, ``object:``, ``context:``, ``tasks:`` (tasks in a
    graph), ``step:`` (steps held by other steps included), ``raise:``,
    ``executor:``, ``handler:``, ``group:``, ``wait:``, ``wait_for:``,
    ``timeout:``, ``nested_run:``; single features (see the code); and the
    ``INTERACTIONS``.
    """
    labels: Set[str] = set()
    config = scenario.runner
    labels.add(f"mode:{config.mode}")
    labels.add(f"debug:{str(config.debug).lower()}")
    labels.add(f"loop_factory:{str(config.loop_factory).lower()}")
    labels.add(f"sigint_handler:{config.sigint_handler}")
    labels.add(f"thread:{config.thread}")
    labels.add(f"loop_fails:{config.loop_fails}")
    labels.add(f"task_factory:{config.task_factory}")

    flat = list(iter_calls(scenario.calls))
    runs_seen = 0
    used = closed = loop_closed = False
    closes = 0
    for index, call in enumerate(flat):
        labels.add(f"call:{call.call}")
        later_runs = any(isinstance(c, (Run, RunObject)) for c in flat[index + 1 :])
        if isinstance(call, (Run, RunObject)):
            if closed:
                labels.add("run-after-close")
            if loop_closed and not closed:
                labels.add("close-loop-then-run")
            runs_seen += 1
        if isinstance(call, CloseLoop):
            loop_closed = True
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
    signal_steps = any(
        isinstance(step, _SIGNALS) for run in scenario.runs() for t in run.main.tasks for step in t.all_steps()
    )
    signals = signal_steps or any(isinstance(c, SigintCall) for c in flat)
    if signals and config.sigint_handler != "default":
        labels.add("sigint-handler-and-sigint")
    if signal_steps and config.task_factory == "legacy":
        labels.add("sigint-without-uncancel")
    if config.thread == "other" and runs_seen:
        labels.add("thread-and-runs")
    return sorted(labels)


def record(scenario: Scenario) -> List[str]:
    """Report ``describe(scenario)`` to Hypothesis (call from a test body); returns the labels.

    Every label is an ``event``; the number of ``INTERACTIONS`` labels is a
    ``target``, so that Hypothesis's targeting phase looks for programs where
    more features meet.
    """
    labels = describe(scenario)
    for label in labels:
        event(label)
    target(float(sum(label in INTERACTIONS for label in labels)), label="interactions")
    return labels


def _describe_graph(graph: TaskGraph, labels: Set[str]) -> None:
    tasks = graph.tasks
    labels.add(f"tasks:{len(tasks)}")
    parent: Dict[int, int] = {}
    for index, task in enumerate(tasks):
        for step in task.all_steps():
            for child in spawned_by(step):
                parent[child] = index
    if any(p != 0 for p in parent.values()):
        labels.add("grandchildren")
    taskgroup_children = {child for task in tasks for s in task.all_steps() if _is_taskgroup(s) for child in s.tasks}
    cancelled: Dict[int, int] = {}
    signals = 0
    for index, task in enumerate(tasks):
        labels.add(f"handler:{task.on_cancel.action}")
        if task.finally_steps:
            labels.add("finally")
        if any(isinstance(s, Spawn) for s in task.finally_steps):
            labels.add("spawn-in-finally")
        if any(isinstance(s, Spawn) for s in task.on_cancel.steps):
            labels.add("spawn-in-cleanup")
        awaited = {s.task for s in task.all_steps() if isinstance(s, Await)}
        grouped = {child for s in task.all_steps() for child in spawned_by(s) if isinstance(s, Group)}
        if any(p == index and child not in awaited | grouped for child, p in parent.items()):
            labels.add("leftover-children")
        handler_steps = task.on_cancel.steps + task.finally_steps
        if any(isinstance(s, Uncancel) for s in walk_steps(handler_steps)):
            labels.add("uncancel-in-handler")
        if any(isinstance(s, StopLoop) for s in walk_steps(task.on_cancel.steps)):
            labels.add("stop_loop-in-cleanup")
        if any(isinstance(s, _SIGNALS) for s in walk_steps(task.on_cancel.steps)):
            labels.add("sigint-in-cleanup")
        base_exceptions = [s for s in task.all_steps() if isinstance(s, Raise) and s.exc in _BASE]
        if index != 0 and base_exceptions:
            labels.add("base-exception-in-child")
            if index in taskgroup_children:
                labels.add("base-exception-in-taskgroup")
        if index in taskgroup_children and any(isinstance(s, Raise) for s in task.all_steps()):
            labels.add("taskgroup-child-errors" if _raisers(tasks, taskgroup_children) > 1 else "taskgroup-child-error")
        if index in taskgroup_children and any(isinstance(s, _SIGNALS) for s in task.all_steps()):
            labels.add("sigint-in-taskgroup")
        signals += sum(isinstance(s, _SIGNALS) for s in task.all_steps())
        for steps in (task.steps, task.on_cancel.steps, task.finally_steps):
            _describe_list(steps, index, parent, labels, cancelled)
    if signals > 1:
        labels.add("sigint-twice")
    if signals and cancelled.get(0):
        labels.add("sigint-and-cancel-main")
    if signals and tasks[0].on_cancel.action == "swallow":
        labels.add("sigint-swallowed")
    if any(count > 1 for count in cancelled.values()):
        labels.add("cancel-twice")


_BASE = ("KeyboardInterrupt", "SystemExit")


def _is_taskgroup(step: Step) -> bool:
    return isinstance(step, Group) and step.how == "taskgroup"


def _raisers(tasks: Tuple, children: Set[int]) -> int:
    return sum(1 for index in children if any(isinstance(s, Raise) for s in tasks[index].all_steps()))


def _describe_list(
    steps: Tuple[Step, ...], index: int, parent: Dict[int, int], labels: Set[str], cancelled: Dict[int, int]
) -> None:
    """Labels of one step list and, recursively, of the lists its steps hold."""
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
            cancelled[step.task] = cancelled.get(step.task, 0) + 1
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
        elif isinstance(step, Group):
            labels.add(f"group:{step.how}")
            if step.how == "gather" and step.return_exceptions:
                labels.add("gather:return_exceptions")
            if step.how == "wait":
                labels.add(f"wait:{step.return_when}")
            if step.how == "wait_for":
                labels.add(f"wait_for:{step.deadline}")
            if step.catch:
                labels.add("group-catch")
            if step.steps:
                labels.add("taskgroup-body")
                if any(isinstance(s, _SIGNALS) for s in walk_steps(step.steps)):
                    labels.add("sigint-in-taskgroup")
        elif isinstance(step, Timeout):
            labels.add(f"timeout:{step.deadline}")
            if step.catch:
                labels.add("timeout-catch")
            if any(isinstance(s, _SIGNALS) for s in walk_steps(step.steps)):
                labels.add("sigint-in-timeout")
        elif isinstance(step, NestedRun):
            labels.add(f"nested_run:{step.how}")
        elif isinstance(step, AsyncGen) and step.finally_steps:
            labels.add("agen-finally")
            if any(s.op == "yield" for s in step.finally_steps):
                labels.add("agen-finally-awaits")
        _describe_list(nested_steps(step), index, parent, labels, cancelled)
