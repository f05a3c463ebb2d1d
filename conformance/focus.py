"""Foci: features that make rare clauses meet in one program, applied to a drawn task graph.

Some clauses of docs/spec.md need several things to happen in one program: a
SIGINT in each of two runs of one runner (R-8), a task left over for
``close()`` whose cleanup spawns a task (K-4) or raises what escapes the loop
(K-6), a context variable set in the driver and read by the tasks (L-6).
Drawn step by step they take thousands of examples, so both generators
(``strategies/scenarios.py`` with Hypothesis, ``conformance.fuzz`` with a
seeded PRNG) draw a ``Focus`` for a program and apply it here to the task
graph of each of its runs, so that the two make the same programs from the
same choices.

Standard library only (the fuzzer uses it); it only builds scenario data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

from conformance.scenario import (
    Call,
    Cancel,
    CloseRunner,
    Executor,
    GetVar,
    OnCancel,
    Run,
    SetSigintHandler,
    SetVar,
    Spawn,
    Step,
    TaskGraph,
    TaskSpec,
    Timeout,
    With,
    Yield,
    nested_steps,
    with_nested_steps,
)

#: Tasks per graph in generated scenarios (as ``strategies.MAX_GRAPH_TASKS``).
MAX_GRAPH_TASKS = 6
#: Yields of a task spawned by a leftover's cleanup while ``close()`` cancels it: enough to
#: outlive the cancellation pass and the shutdown that follows (K-4).
SPAWNED_AT_CLOSE_LENGTH = 8

#: A SIGINT focus: the signal step (``sigint`` or ``interrupt_main``), the ``timeout`` block
#: (deadline, catch) around it or None, the step of a second one in main's cancellation handler
#: or None, whether main cancels itself just before (S-3: someone else cancelled it too), and
#: whether two runs of the program get it.
SigintFocus = Tuple[Step, Optional[Tuple[str, bool]], Optional[Step], bool, bool]
#: A task left over for ``close()``: how many steps it runs first, whether its cleanup spawns
#: a task, whether it awaits, and the step its cleanup ends with (None: it re-raises).
Leftover = Tuple[int, bool, bool, Optional[Step]]


@dataclass(frozen=True)
class Focus:
    """What the runs of a program do besides their own steps; the default: nothing.

    ``sigint``: main starts with a SIGINT (S-1), maybe in a ``timeout`` block
    (S-4), maybe with a second one while it handles the first one's
    cancellation (S-2), maybe cancelling itself first (S-3), maybe in two runs
    (R-8). ``leftovers``: main first
    spawns tasks that outlive it, for ``close()`` to cancel (K-*).
    ``context``: main reads and writes a variable that the driver set first
    (L-6, R-4). ``nested``: main calls ``run`` from inside the loop (R-2,
    A-2). ``set_handler``, ``close_runner``: main's ``finally`` block starts by
    installing a SIGINT handler (R-11) and by closing the runner (C-6).
    """

    sigint: Optional[SigintFocus] = None
    leftovers: Tuple[Leftover, ...] = ()
    context: bool = False
    nested: Optional[Step] = None
    set_handler: bool = False
    close_runner: bool = False

    @property
    def two_runs(self) -> bool:
        return self.sigint is not None and self.sigint[4]


_NOTHING = Focus()


def focused(graph: TaskGraph, focus: Focus) -> Tuple[TaskGraph, bool]:
    """``graph`` with its main task doing what ``focus`` says.

    Main first spawns the leftovers (as the last tasks of the graph, as long
    as there is room), reads and writes the variable, runs nested and raises
    the SIGINT; its ``finally`` block starts by installing a SIGINT handler and
    closing the runner, however main's own steps ended. Also says whether a
    task is spawned while ``close()`` cancels the leftovers (K-4).
    """
    if focus == _NOTHING:
        return graph, False
    main = graph.tasks[0]
    if focus.sigint is not None:
        main = _with_sigint(main, *focus.sigint[:4])
    if focus.nested is not None:
        main = starting_with(main, (focus.nested,))
    if focus.context:
        main = starting_with(main, (GetVar("a"), SetVar("a", "main")))
    finally_first = (SetSigintHandler(),) * focus.set_handler + (CloseRunner(),) * focus.close_runner
    main = dataclasses.replace(main, finally_steps=finally_first + main.finally_steps)
    tasks, first = graph.tasks[1:], ()
    spawns_at_close = False
    for leftover in focus.leftovers:
        added = _leftover(1 + len(tasks), *leftover)
        if added:
            first += (Spawn(1 + len(tasks)), Yield())
            tasks += added
            spawns_at_close = spawns_at_close or len(added) > 1
    return TaskGraph((starting_with(main, first),) + tasks), spawns_at_close


def with_main(graph: TaskGraph, main: TaskSpec) -> TaskGraph:
    return TaskGraph((main,) + graph.tasks[1:])


def starting_with(task: TaskSpec, steps: Tuple[Step, ...]) -> TaskSpec:
    return dataclasses.replace(task, steps=steps + task.steps)


def _with_sigint(
    main: TaskSpec, first: Step, block: Optional[Tuple[str, bool]], again: Optional[Step], also_cancelled: bool
) -> TaskSpec:
    opening: Tuple[Step, ...] = (Cancel(0),) * also_cancelled + (first, Yield())
    if block is not None:
        opening = (Timeout(block[0], block[1], opening),)
    main = starting_with(main, opening)
    if again is not None:
        cleanup = main.on_cancel.steps if main.on_cancel.action == "cleanup" else ()
        main = dataclasses.replace(main, on_cancel=OnCancel("cleanup", steps=(again, Yield()) + cleanup))
    return main


def _leftover(index: int, length: int, spawns: bool, awaits: bool, ending: Optional[Step]) -> Tuple[TaskSpec, ...]:
    """Task ``index``, left over when main is done, and the task its cleanup spawns, if any.

    It runs ``length`` steps, then waits for its cancellation by ``close()``;
    then its cleanup spawns a task (K-4), awaits (K-3) and ends with
    ``ending``, each maybe. The spawn comes first, so that it happens whatever
    the cleanup does next. None at all if the graph has no room left.
    """
    if index >= MAX_GRAPH_TASKS:
        return ()
    spawns = spawns and index + 1 < MAX_GRAPH_TASKS
    cleanup = (Spawn(index + 1),) * spawns + (Yield(),) * awaits + (() if ending is None else (ending,))
    leftover = TaskSpec((Yield(),) * length, OnCancel("cleanup", steps=cleanup))
    return (leftover, TaskSpec((Yield(),) * SPAWNED_AT_CLOSE_LENGTH)) if spawns else (leftover,)


def without_executors(calls: Tuple[Call, ...]) -> Tuple[Call, ...]:
    """The program with its executor steps made ``yield`` steps.

    A task spawned while ``close()`` cancels the leftovers runs on while the
    runner shuts the default executor down, which runs the loop for as long as
    a thread takes: how far the task gets would depend on timing. Without an
    executor that shutdown does not run the loop.
    """

    def step(item: Step) -> Step:
        if isinstance(item, Executor):
            return Yield()
        return with_nested_steps(item, tuple(step(inner) for inner in nested_steps(item)))

    def steps(items: Tuple[Step, ...]) -> Tuple[Step, ...]:
        return tuple(step(item) for item in items)

    def task(spec: TaskSpec) -> TaskSpec:
        if not any(isinstance(item, Executor) for item in spec.all_steps()):
            return spec
        on_cancel = dataclasses.replace(spec.on_cancel, steps=steps(spec.on_cancel.steps))
        return TaskSpec(steps(spec.steps), on_cancel, steps(spec.finally_steps))

    def call(item: Call) -> Call:
        if isinstance(item, Run):
            return Run(TaskGraph(tuple(task(spec) for spec in item.main.tasks)), item.context)
        if isinstance(item, With):
            return With(tuple(call(inner) for inner in item.calls))
        return item

    return tuple(call(item) for item in calls)
