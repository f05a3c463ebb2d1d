"""Hypothesis strategies for scenarios: the internals behind ``strategies``.

Everything here draws only from Hypothesis (no other source of randomness), so
every scenario is reproducible and shrinks. Choices are ordered simplest-first
and optional parts are gated by a draw whose smallest value means "leave it
out", so the shrinker heads towards fewer calls, fewer tasks, fewer steps,
``propagate`` handlers, no ``finally`` and the default runner configuration.

Proportions are deliberately uneven (see the ``_weighted`` tables): most
scenarios are one ``run`` of a small graph, and the steps that end a run
abruptly (``sigint``, ``interrupt_main``, ``sigint_wait``, ``KeyboardInterrupt``,
``SystemExit``, ``stop_loop``, ``close_runner``) are rarer than the rest so that
they do not drown everything else.

Some clauses need several features to meet in one program (a SIGINT in each
of two runs, a leftover task whose cleanup raises or spawns, a context
variable set in the driver and read by the tasks). Left to chance they would
take thousands of examples, so a program's runs may get a *focus* (``_FOCI``):
the main task starts with a SIGINT (maybe in a ``timeout`` block, maybe again
in its cancellation handler, maybe in each of two runs), spawns a task that is
left over for ``close()``, reads and writes a context variable the driver set
first, or closes the runner or calls ``run`` from inside its loop. Each
feature of a focus is a draw of its own whose smallest value means "off", so
that several often meet in one program and each shrinks away on its own.

Steps that hold steps (a ``timeout`` block, a ``TaskGroup`` body) are drawn as
templates with a length and take that many of the steps that follow them in
their list once the list is complete, so a nested body is made of ordinary
draws too and shrinks like any other list. A task's children are spawned by
``spawn`` steps or together by the task's one ``group`` step, drawn with the
task (usually none).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hypothesis import strategies as st

from conformance.focus import Focus, Leftover, focused, starting_with, with_main, without_executors
from conformance.scenario import (
    CONTEXT_VARS,
    MAX_NESTING,
    MAX_STRING,
    MODES,
    NON_COROUTINES,
    RETURN_WHEN,
    SIGINT_OPS,
    SINGLE_CHILD_GROUPS,
    AsyncGen,
    Await,
    Call,
    Cancel,
    Close,
    CloseLoop,
    CloseRunner,
    ConstructPositional,
    Executor,
    GetLoop,
    GetVar,
    GetVarCall,
    Group,
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    SetSigintHandler,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    SigintWait,
    Spawn,
    Step,
    StopLoop,
    TaskGraph,
    TaskSpec,
    Timeout,
    Uncancel,
    With,
    Yield,
    nested_steps,
    with_nested_steps,
)

#: What a candidate can run: a Runner class, an ``asyncio.run``-like function,
#: or a loop factory driven by the standard library's Runner.
KINDS = ("runner", "run", "loop")

#: Tasks per graph. Lower than the model's limit: the comparison may try every
#: order of the tasks left over when main returns.
MAX_GRAPH_TASKS = 6
#: Generated steps per list, before the spawns and awaits of the tree go in.
MAX_BODY_STEPS = 6
MAX_HANDLER_STEPS = 4
#: Calls per program; nested ``with`` blocks are shorter and at most two deep.
MAX_PROGRAM_CALLS = 6
MAX_WITH_CALLS = 4
MAX_WITH_DEPTH = 2


def _weighted(*pairs: Tuple[Any, int]) -> Tuple[Any, ...]:
    """``(value, weight)`` pairs → a tuple for ``sampled_from``; the first value is what shrinking prefers."""
    return tuple(value for value, weight in pairs for _ in range(weight))


def _pick(*pairs: Tuple[Any, int]) -> st.SearchStrategy[Any]:
    return st.sampled_from(_weighted(*pairs))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown candidate kind {kind!r}: expected one of {', '.join(KINDS)}")


# ----------------------------------------------------------------- leaves

#: Any printable string the model accepts (``str.isprintable``: no control,
#: format, private, unassigned or separator characters other than the space).
_TEXT = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), include_characters=" "),
    max_size=MAX_STRING,
)
_INTEGERS = st.integers(-(2**31), 2**31 - 1)
#: Stand-ins in the tables below for "draw an arbitrary integer / string now".
_ANY_INT = object()
_ANY_TEXT = object()
_VALUE_CHOICES = _pick((None, 6), (0, 1), (1, 2), (2, 1), (-1, 1), ("x", 1), ("done", 1), (_ANY_INT, 1), (_ANY_TEXT, 1))
_MESSAGE_CHOICES = _pick((None, 6), ("stop", 2), ("", 1), ("x", 1), (_ANY_TEXT, 2))
_VARS = st.sampled_from(CONTEXT_VARS)
_EXCEPTIONS = _pick(
    ("ValueError", 6), ("RuntimeError", 5), ("CancelledError", 5), ("KeyboardInterrupt", 1), ("SystemExit", 1)
)
#: Weights of what a ``run_object`` call hands to ``run`` (every object of the model must have one).
_OBJECT_WEIGHTS = {"int": 2, "none": 2, "lambda": 2, "generator": 2, "awaitable": 3, "awaited": 3}
_OBJECTS = _pick(*((name, _OBJECT_WEIGHTS[name]) for name in NON_COROUTINES))
_CONTEXTS = _pick(("runner", 6), ("fresh", 1), ("copy", 1))


def _value(draw: st.DrawFn) -> Any:
    value = draw(_VALUE_CHOICES)
    if value is _ANY_INT:
        return draw(_INTEGERS)
    if value is _ANY_TEXT:
        return draw(_TEXT)
    return value


def _message(draw: st.DrawFn) -> Optional[str]:
    message = draw(_MESSAGE_CHOICES)
    return draw(_TEXT) if message is _ANY_TEXT else message


# ------------------------------------------------------------------ steps


@dataclass(frozen=True)
class _CancelTemplate:
    """A ``cancel`` step whose target is chosen once the spawn tree is known.

    ``target`` is "child" (one of the task's children), "main" (task 0, which
    is the task itself in the main task), "self" or "any" (any task of the
    graph); ``index`` picks among several candidates.
    """

    target: str
    index: int = 0
    msg: Optional[str] = None


@dataclass(frozen=True)
class _TimeoutTemplate:
    """A ``timeout`` step whose body is ``first`` (if any) and the ``length`` steps that follow it in its list."""

    deadline: str
    catch: bool
    length: int
    first: Optional[Step] = None


#: Stand-in for "draw a step of this kind with arbitrary fields".
_GENERAL = object()

#: Most steps are one draw from this table (drawing is what costs time); the
#: ``_GENERAL`` entries draw every field, so all values stay reachable.
_STEP_ENTRIES = (
    (Yield(), 40),
    (Return(None), 2),
    (Return(1), 1),
    (GetVar("a"), 3),
    (SetVar("a", 1), 3),
    (_CancelTemplate("child"), 3),
    (_CancelTemplate("child", 1), 1),
    (_CancelTemplate("child", 0, "stop"), 2),
    (_CancelTemplate("main"), 1),
    (_CancelTemplate("main", 0, "stop"), 1),
    (Raise("ValueError"), 4),
    (Raise("RuntimeError", "boom"), 3),
    (Raise("CancelledError"), 3),
    (Raise("KeyboardInterrupt"), 1),
    (Raise("SystemExit"), 1),
    (Executor(True), 3),
    (Executor(False), 3),
    (AsyncGen(), 5),
    (_TimeoutTemplate("never", False, 1), 2),
    (_TimeoutTemplate("expired", False, 1), 2),
    (_TimeoutTemplate("expired", True, 2), 2),
    (_TimeoutTemplate("expired", False, 0, Sigint()), 1),
    (_TimeoutTemplate("never", True, 1, SigintWait()), 1),
    (Uncancel(), 2),
    (NestedRun("runner"), 1),
    (NestedRun("run"), 1),
    # The steps that end a run abruptly, kept rare: one of them in a scenario
    # decides most of what happens (the two exceptions are with the other
    # raises, so that shrinking one of them can reach ValueError). A
    # ``sigint_wait`` drawn for a task other than the main one becomes a
    # ``yield`` (only the main task can wait for one).
    (Sigint(), 1),
    (InterruptMain(), 1),
    (SigintWait(), 2),
    (StopLoop(), 1),
    (CloseRunner(), 1),
    (SetSigintHandler(), 1),
    ((_GENERAL, "return"), 1),
    ((_GENERAL, "var"), 2),
    ((_GENERAL, "cancel"), 1),
    ((_GENERAL, "raise"), 3),
    ((_GENERAL, "timeout"), 1),
    ((_GENERAL, "agen"), 2),
)
_STEP_TABLE = _pick(*_STEP_ENTRIES)
#: Handler lists (``except CancelledError`` cleanup, ``finally``) also make
#: more of what matters while being cancelled: failing, uncancelling,
#: stopping the loop.
_HANDLER_TABLE = _pick(*_STEP_ENTRIES, (Raise("ValueError", "late"), 4), (Uncancel(), 3), (StopLoop(), 2))

_CANCEL_TARGETS = _pick(("child", 6), ("main", 2), ("self", 1), ("any", 1))
_CANCEL_INDEX = st.integers(0, MAX_GRAPH_TASKS - 1)
_DEADLINES = _pick(("never", 1), ("expired", 1))
_BODY_LENGTHS = st.integers(0, 3)
#: What an async generator's ``finally`` block does while it is being closed.
_AGEN_FINALLY = st.lists(
    _pick((Yield(), 3), (Raise("ValueError", "agen"), 1), (Raise("CancelledError"), 1)), max_size=3
)


def _resolve_general(draw: st.DrawFn, step: Any) -> Any:
    """Draw the fields of a ``_GENERAL`` table entry; other entries are already steps (or templates)."""
    if not isinstance(step, tuple):
        return step
    kind = step[1]
    if kind == "return":
        return Return(_value(draw))
    if kind == "var":
        var = draw(_VARS)
        return SetVar(var, _value(draw)) if draw(st.booleans()) else GetVar(var)
    if kind == "cancel":
        return _CancelTemplate(draw(_CANCEL_TARGETS), draw(_CANCEL_INDEX), _message(draw))
    if kind == "timeout":
        return _TimeoutTemplate(draw(_DEADLINES), draw(st.booleans()), draw(_BODY_LENGTHS))
    if kind == "agen":
        return AsyncGen(tuple(draw(_AGEN_FINALLY)))
    return Raise(draw(_EXCEPTIONS), _message(draw))


# Lists of table entries rather than of composite steps: a list element is
# then a single draw, and the few general entries are filled in afterwards.
_BODY = st.lists(_STEP_TABLE, max_size=MAX_BODY_STEPS)
_HANDLER_STEPS = st.lists(_HANDLER_TABLE, max_size=MAX_HANDLER_STEPS)


# ------------------------------------------------------------ task graphs

_TASK_COUNT_WEIGHTS = ((1, 6), (2, 6), (3, 4), (4, 2), (5, 1), (6, 1))
_TASK_COUNTS = tuple(
    _pick(*(pair for pair in _TASK_COUNT_WEIGHTS if pair[0] <= limit)) for limit in range(MAX_GRAPH_TASKS + 1)
)
#: (on_cancel action, whether there is a ``finally``), one draw per task.
_HANDLERS = _pick(
    *(
        ((action, has_finally), action_weight * finally_weight)
        for action, action_weight in (("propagate", 6), ("swallow", 2), ("cleanup", 2))
        for has_finally, finally_weight in ((False, 3), (True, 1))
    )
)
#: (which parent list holds the spawn, whether and how the parent awaits the
#: child, where the await goes), one draw per child. A spawn goes in the
#: parent's cleanup or finally steps only if the parent has them (else in its
#: body); "after": later in the list holding the spawn; "anywhere": any list
#: of the parent at any position, so possibly before the spawn (which the
#: interpreter skips); "group": in the parent's group step, if it has one
#: (else spawned and awaited on its own).
_CHILD_PLANS = _pick(
    *(
        ((where, how, place), where_weight * how_weight * place_weight)
        for where, where_weight in (("steps", 4), ("finally", 1), ("cleanup", 2))
        for how, how_weight in (("none", 3), ("await", 4), ("catch", 1), ("group", 4))
        for place, place_weight in (
            (("after", 2), ("anywhere", 1)) if how not in ("none", "group") else (("after", 3),)
        )
    )
)
_AWAIT_LISTS = _pick(("steps", 6), ("finally", 1), ("cleanup", 1))


@dataclass(frozen=True)
class _GroupPlan:
    """A task's one ``group`` step: how it waits, its options, and where it goes in the task's body.

    The children whose plan says "group" join it (a single-child kind takes
    the first of them; the others are awaited one by one instead). A
    ``TaskGroup``'s body is ``first`` and the ``body`` steps that follow it.
    ``failing`` makes every child end with an error of its own, so that the
    group meets several (an ``ExceptionGroup`` of several, for a ``TaskGroup``).
    """

    how: str
    return_exceptions: bool = False
    return_when: str = "all_completed"
    deadline: str = "never"
    catch: bool = False
    body: int = 0
    first: Optional[Step] = None
    failing: bool = False


#: A task's group, one draw (``None``, no group, is what shrinking prefers).
_GROUP_PLANS = _pick(
    (None, 8),
    (_GroupPlan("gather"), 2),
    (_GroupPlan("gather", return_exceptions=True), 2),
    (_GroupPlan("gather", catch=True), 1),
    (_GroupPlan("gather", failing=True), 1),
    *((_GroupPlan("wait", return_when=when), 3) for when in RETURN_WHEN),
    (_GroupPlan("taskgroup"), 2),
    (_GroupPlan("taskgroup", body=1), 2),
    (_GroupPlan("taskgroup", catch=True, body=2), 2),
    (_GroupPlan("taskgroup", first=SigintWait()), 1),
    (_GroupPlan("taskgroup", catch=True, failing=True), 3),
    (_GroupPlan("shield"), 4),
    (_GroupPlan("wait_for", deadline="never"), 3),
    (_GroupPlan("wait_for", deadline="expired", catch=True), 3),
)


def _resolve_cancel(template: _CancelTemplate, me: int, children: Sequence[int], n_tasks: int) -> Cancel:
    target = template.target
    if target == "child" and not children:
        # A task without children cancels another task (or itself, if it is alone).
        others = [task for task in range(n_tasks) if task != me] or [me]
        task = others[template.index % len(others)]
    elif target == "child":
        task = children[template.index % len(children)]
    elif target == "main":
        task = 0
    elif target == "self":
        task = me
    else:
        task = template.index % n_tasks
    return Cancel(task, template.msg)


#: Spawn and await positions are drawn before the list they go in is known
#: (so that all of a task's draws form one block the shrinker can drop) and
#: folded onto it with a modulo; 0 is the first place for a spawn, the last
#: for an await.
_POSITIONS = st.integers(0, MAX_BODY_STEPS + 2 * MAX_GRAPH_TASKS)
#: Parent of task k >= 1: the smaller k of the 2k - 1 draws make the main task the parent.
_PARENTS = (None,) + tuple(st.integers(0, 2 * k - 2) for k in range(1, MAX_GRAPH_TASKS))


@dataclass
class _TaskDraft:
    lists: Dict[str, List[Any]]
    action: str = "propagate"
    value: Any = None
    has_finally: bool = False
    group: Optional[_GroupPlan] = None
    group_at: int = 0
    parent: int = 0
    plan: Tuple[str, str, str] = ("steps", "none", "after")
    spawn_at: int = 0
    await_at: int = 0
    await_list: str = "steps"


@st.composite
def _task_drafts(draw: st.DrawFn, k: int) -> _TaskDraft:
    """Everything about task ``k`` in one block of draws, so that the shrinker can drop a whole task."""
    action, has_finally = draw(_HANDLERS)
    body = [_resolve_general(draw, s) for s in draw(_BODY)]
    value = _value(draw) if action == "swallow" else None
    cleanup = [_resolve_general(draw, s) for s in draw(_HANDLER_STEPS)] if action == "cleanup" else []
    finally_steps = [_resolve_general(draw, s) for s in draw(_HANDLER_STEPS)] if has_finally else []
    draft = _TaskDraft({"steps": body, "cleanup": cleanup, "finally": finally_steps}, action, value, has_finally)
    if k < MAX_GRAPH_TASKS - 1:  # the last task can have no children
        draft.group = draw(_GROUP_PLANS)
        if draft.group is not None:
            draft.group_at = draw(_POSITIONS)
    if k:
        draft.parent = max(0, draw(_PARENTS[k]) - (k - 1))
        draft.plan = draw(_CHILD_PLANS)
        # Drawn whatever the plan says, so that a simpler plan leaves the
        # draws after it meaning what they meant (the shrinker moves freely).
        draft.spawn_at = draw(_POSITIONS)
        draft.await_at = draw(_POSITIONS)
        draft.await_list = draw(_AWAIT_LISTS)
    return draft


_TASK_DRAFTS = tuple(_task_drafts(k) for k in range(MAX_GRAPH_TASKS))


@st.composite
def _task_graphs(draw: st.DrawFn, max_tasks: int) -> TaskGraph:
    n = draw(_TASK_COUNTS[max_tasks])
    drafts = [draw(_TASK_DRAFTS[k]) for k in range(n)]
    children: List[List[int]] = [[] for _ in range(n)]
    for k in range(1, n):
        children[drafts[k].parent].append(k)

    def holder(k: int, name: str) -> List[Any]:
        """The parent's list called ``name``, or its body if the parent has no such block."""
        parent = drafts[drafts[k].parent]
        missing = (name == "cleanup" and parent.action != "cleanup") or (name == "finally" and not parent.has_finally)
        return parent.lists["steps" if missing else name]

    # Each task's group takes the children whose plan says so (a single-child
    # kind only the first); the others are spawned and awaited one by one.
    members: List[List[int]] = [[] for _ in range(n)]
    for k in range(1, n):
        group = drafts[drafts[k].parent].group
        if drafts[k].plan[1] == "group" and group is not None:
            if not (group.how in SINGLE_CHILD_GROUPS and members[drafts[k].parent]):
                members[drafts[k].parent].append(k)
    grouped = {k for group_members in members for k in group_members}
    for index, draft in enumerate(drafts):
        if draft.group is not None and draft.group.failing:
            for position, k in enumerate(members[index]):
                drafts[k].lists["steps"].append(Raise(("ValueError", "RuntimeError")[position % 2], f"t{k}"))
    # Spawns, last child first, each at a position counted from the start.
    for k in reversed(range(1, n)):
        if k in grouped:
            continue
        steps = holder(k, drafts[k].plan[0])
        steps.insert(drafts[k].spawn_at % (len(steps) + 1), Spawn(k))
    for index, draft in enumerate(drafts):
        if members[index]:
            assert draft.group is not None
            body = draft.lists["steps"]
            body.insert(draft.group_at % (len(body) + 1), (draft.group, tuple(members[index])))
    # Awaits, first child first, each at a position counted from the end.
    for k in range(1, n):
        where, how, place = drafts[k].plan
        if how == "none" or k in grouped:
            continue
        step = Await(k, how == "catch")
        if place == "after":
            steps = holder(k, where)
            room = len(steps) - steps.index(Spawn(k))
        else:
            steps = holder(k, drafts[k].await_list)
            room = len(steps) + 1
        steps.insert(len(steps) - drafts[k].await_at % room, step)

    def finish(steps: List[Any], me: int, depth: int = 0) -> Tuple[Step, ...]:
        """Resolve the templates of a list; a template with a body takes the steps that follow it."""
        out: List[Step] = []
        position = 0
        while position < len(steps):
            item = steps[position]
            position += 1
            if isinstance(item, _CancelTemplate):
                out.append(_resolve_cancel(item, me, children[me], n))
            elif isinstance(item, SigintWait) and me != 0:
                out.append(Yield())  # only the main task can wait for a SIGINT from outside
            elif isinstance(item, AsyncGen) and depth >= MAX_NESTING:
                out.append(AsyncGen())  # its finally block would nest too deep
            elif isinstance(item, _TimeoutTemplate):
                length = item.length if depth < MAX_NESTING else 0
                first = [item.first] if item.first is not None and depth < MAX_NESTING else []
                body = finish(first + steps[position : position + length], me, depth + 1)
                position += length
                out.append(Timeout(item.deadline, item.catch, body))
            elif isinstance(item, tuple):  # a group: (plan, children)
                plan, group_children = item
                length = plan.body if depth < MAX_NESTING else 0
                first = [plan.first] if plan.first is not None and depth < MAX_NESTING else []
                body = finish(first + steps[position : position + length], me, depth + 1)
                position += length
                out.append(
                    Group(
                        plan.how,
                        group_children,
                        plan.return_exceptions,
                        plan.return_when,
                        plan.deadline,
                        plan.catch,
                        body,
                    )
                )
            else:
                out.append(item)
        return tuple(out)

    return TaskGraph(
        tuple(
            TaskSpec(
                finish(d.lists["steps"], i),
                OnCancel(d.action, d.value, finish(d.lists["cleanup"], i)),
                finish(d.lists["finally"], i),
            )
            for i, d in enumerate(drafts)
        )
    )


_GRAPH_STRATEGIES = tuple(_task_graphs(limit) for limit in range(1, MAX_GRAPH_TASKS + 1))


def task_graphs(max_tasks: int = MAX_GRAPH_TASKS) -> st.SearchStrategy[TaskGraph]:
    """Valid task graphs of 1 to ``max_tasks`` tasks (at most 6).

    Task ``k`` is spawned by a task below ``k`` (shrinking towards the main
    task), from one of that parent's step lists (usually its body), and is
    awaited by the same parent or not at all; an await usually comes after
    the spawn (one before it is skipped by the interpreter). Or it is one of
    the children of its parent's ``group`` step (``gather``, ``wait``,
    ``TaskGroup``, ``shield``, ``wait_for``), which spawns and waits for
    them. Shrunk, a parent reads "spawn 1, spawn 2, <work>, await 1, await 2".
    """
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or not 1 <= max_tasks <= MAX_GRAPH_TASKS:
        raise ValueError(f"max_tasks must be an integer from 1 to {MAX_GRAPH_TASKS}, got {max_tasks!r}")
    return _GRAPH_STRATEGIES[max_tasks - 1]


# ------------------------------------------------------------------ calls

_GRAPHS = task_graphs()

#: Stand-ins for the calls that need more draws.
_RUN = object()
_WITH = object()
_OBJECT = object()
_CALL_TABLE = (
    (_RUN, 8),
    (GetLoop(), 3),
    (Close(), 3),
    (SetVarCall("a", 1), 1),
    (GetVarCall("a"), 1),
    ((_GENERAL, "var"), 1),
    (_OBJECT, 4),
    (_WITH, 3),
    (SigintCall(), 1),
    (ConstructPositional(), 2),
    (CloseLoop(), 2),
)
_CALL_TABLES = tuple(
    _pick(*(pair for pair in _CALL_TABLE if pair[0] is not _WITH or depth < MAX_WITH_DEPTH))
    for depth in range(MAX_WITH_DEPTH + 1)
)


@st.composite
def _call_items(draw: st.DrawFn, depth: int) -> Call:
    """One call of a program that holds a runner (mode "with" or "close")."""
    call = draw(_CALL_TABLES[depth])
    if call is _RUN:
        return Run(draw(_GRAPHS), draw(_CONTEXTS))
    if call is _WITH:
        return With(tuple(draw(_CALL_LISTS[depth + 1])))
    if call is _OBJECT:
        return RunObject(draw(_OBJECTS))
    if isinstance(call, tuple):
        var = draw(_VARS)
        return SetVarCall(var, _value(draw)) if draw(st.booleans()) else GetVarCall(var)
    return call


_CALL_LISTS = (st.lists(_call_items(0), min_size=1, max_size=MAX_PROGRAM_CALLS),) + tuple(
    st.lists(_call_items(depth), max_size=MAX_WITH_CALLS) for depth in range(1, MAX_WITH_DEPTH + 1)
)


#: The outline of a program that holds a runner, in two draws (two small tables rather than one
#: large one: Hypothesis draws the far end of a table of more than 256 entries rarely). First a
#: call made before anything else, if any: a context variable set or read in the driver,
#: ``get_loop``, ``close`` before first use, a runner constructed with a positional argument, the
#: runner's loop closed by the user, or ``run`` of an already-awaited coroutine or of another
#: awaitable.
_PRELUDES = _pick(
    (None, 10),
    (SetVarCall("a", 1), 2),
    (SetVarCall("b", "x"), 1),
    (GetVarCall("a"), 1),
    (GetLoop(), 2),
    (Close(), 2),
    (ConstructPositional(), 3),
    (CloseLoop(), 3),
    (RunObject("awaited"), 2),
    (RunObject("awaitable"), 2),
)
#: Then the program's shape: one run with the given context ("single"), ``run`` of something that
#: is not a coroutine or an already-awaited one ("object"), a list of calls of every kind
#: ("program"), two runs of one runner, tasks of the first surviving into the second ("twice"),
#: two runs with a SIGINT between them ("interrupted"), or the runner initialised, a ``with``
#: block entering it again, then a run ("reentered").
_SHAPES = _pick(
    (("single", "runner"), 18),
    (("single", "fresh"), 3),
    (("single", "copy"), 3),
    (("program", None), 16),
    (("twice", "runner"), 4),
    (("object", None), 6),
    (("interrupted", "runner"), 4),
    (("reentered", "runner"), 10),
)
#: Whether a program in mode "close" closes its runner at the end (it usually does), and then
#: tries to run once more ("again", L-1, R-3).
_CLOSE_AT_END = _pick((False, 1), (True, 2), ("again", 1))
#: Mode "run": a run, a non-coroutine, or a run whose main task first calls the
#: program's run function from inside the loop (A-2).
_NESTED = object()
_RUN_MODE_CALLS = _pick((_RUN, 2), (_OBJECT, 3), (_NESTED, 2))

# ------------------------------------------------------------------ foci


#: The SIGINT a focus raises: a real one, or ``_thread.interrupt_main()`` (S-6).
_FOCUS_SIGINTS = _pick((Sigint(), 1), (InterruptMain(), 1))
#: The ``timeout`` block (deadline, catch) a focus raises its SIGINT in (S-4), if any.
_FOCUS_BLOCKS = _pick(
    (None, 4), (("never", False), 1), (("expired", False), 1), (("never", True), 1), (("expired", True), 1)
)
#: What a focus runs from inside the loop: the runner's ``run()`` (R-2) or the run function (A-2).
_FOCUS_NESTED = _pick((NestedRun("runner"), 2), (NestedRun("run"), 1))
#: Contexts of the runs of a "context" focus: the runner's (L-6, R-4), or their own (R-4).
_FOCUS_CONTEXTS = _pick(("runner", 2), ("fresh", 1), ("copy", 1))
#: How long a leftover task runs before it waits to be cancelled, so that it outlives main.
_LEFTOVER_LENGTHS = st.integers(3, 6)
#: How a leftover task's cleanup ends, once ``close()`` cancelled it: re-raising the cancellation
#: (``None``), failing (K-5), raising what escapes the loop (K-6, C-4), taking a SIGINT (S-5),
#: stopping the loop (R-13), or swallowing the cancellation and returning (K-5: nothing to report).
_LEFTOVER_ENDINGS = _pick(
    (None, 1),
    (Raise("ValueError", "cleanup"), 4),
    (Raise("KeyboardInterrupt"), 2),
    (Raise("SystemExit"), 1),
    (Sigint(), 4),
    (StopLoop(), 3),
    (Return("swallowed"), 4),
)
#: Whether a feature of a focus is on: every other time, a little less or a little more often.
_SOMETIMES = st.booleans()
_OFTEN = _pick((False, 3), (True, 2))
_MOSTLY = _pick((False, 2), (True, 3))
#: Whether a rarer feature of a focus is on: one time in three.
_SELDOM = _pick((False, 2), (True, 1))


@st.composite
def _foci(draw: st.DrawFn, sigint_likely: bool) -> Focus:
    """A ``conformance.focus.Focus``: each feature on or off independently, so that several often meet.

    ``sigint_likely``: a main task without ``uncancel()`` (``task_factory:
    legacy``) matters when a SIGINT cancels it (R-10), so it usually gets one.
    """
    # Every draw is made whatever the flags say, so that the same draws mean the same
    # focus for any task factory (the shrinker can then drop a legacy one).
    on, first, block, again, also_cancelled, two_runs = (
        draw(_OFTEN),
        draw(_FOCUS_SIGINTS),
        draw(_FOCUS_BLOCKS),
        draw(_FOCUS_SIGINTS) if draw(st.booleans()) else None,
        draw(_SELDOM),
        draw(_SOMETIMES),
    )
    sigint = None
    if sigint_likely:
        # A plain one: anything else would end the run before R-10 decides.
        sigint = (first, None, None, False, two_runs)
    elif on:
        sigint = (first, block, again, also_cancelled, two_runs)
    leftovers: Tuple[Leftover, ...] = ()
    if draw(_MOSTLY):
        for _ in range(1 + draw(_SOMETIMES)):
            spec = (draw(_LEFTOVER_LENGTHS), draw(st.booleans()), draw(st.booleans()), draw(_LEFTOVER_ENDINGS))
            leftovers += (spec,)
    context = draw(_SELDOM)
    nested = draw(_FOCUS_NESTED) if draw(_SELDOM) else None
    return Focus(sigint, leftovers, context, nested, draw(_SELDOM), draw(_SELDOM))


_FOCI = {sigint_likely: _foci(sigint_likely) for sigint_likely in (False, True)}


@st.composite
def _programs(draw: st.DrawFn, mode: str, foci: st.SearchStrategy[Focus]) -> Tuple[Call, ...]:
    focus = draw(foci)
    spawned_at_close = False

    def focused_graph() -> TaskGraph:
        nonlocal spawned_at_close
        graph, spawns = focused(draw(_GRAPHS), focus)
        spawned_at_close = spawned_at_close or spawns
        return graph

    if mode == "run":
        kind = draw(_RUN_MODE_CALLS)
        if kind is _OBJECT:
            return (RunObject(draw(_OBJECTS)),)
        graph = focused_graph()
        if kind is _NESTED:
            graph = with_main(graph, starting_with(graph.tasks[0], (NestedRun("run"),)))
        calls: Tuple[Call, ...] = (Run(graph),)
        return without_executors(calls) if spawned_at_close else calls
    # The same draws mean the same calls in modes "with" and "close", so that
    # the shrinker can switch a program to mode "with" (the default) as it is.
    first, (shape, context) = draw(_PRELUDES), draw(_SHAPES)
    prelude: List[Call] = [] if first is None else [first]
    if focus.two_runs:
        shape, context = "twice", context or "runner"  # a first SIGINT in each of two runs of one runner
    if focus.context:
        # A variable set in the driver before the runner's first use (L-6), read by every run.
        if not any(isinstance(call, SetVarCall) and call.var == "a" for call in prelude):
            prelude.insert(0, SetVarCall("a", 1))
    program: List[Call] = prelude

    def run(run_context: str = "runner") -> Run:
        graph = focused_graph()
        return Run(graph, draw(_FOCUS_CONTEXTS) if focus.context else run_context)

    if shape == "program":
        program += draw(_CALL_LISTS[0])
    elif shape == "object":
        program.append(RunObject(draw(_OBJECTS)))
    elif shape == "reentered":
        # Entered again while open (E-2); the inner exit closes the runner for good (L-1, R-3).
        program += [GetLoop(), With((GetLoop(),)), run(context)]
    else:
        program.append(run(context))
    if shape == "twice":
        program.append(run())
    if shape == "interrupted":
        program += [SigintCall(), run()]
    end = draw(_CLOSE_AT_END) if mode == "close" else False
    if end or (mode == "close" and focus.leftovers):
        program.append(Close())  # a leftover is there for close() to cancel
    if end == "again":
        program.append(Run())
    return without_executors(tuple(program)) if spawned_at_close else tuple(program)


# ---------------------------------------------------------------- public


#: (SIGINT handler, thread): usually Python's default handler and the main thread.
_SIGNAL_SETTINGS = _pick(
    (("default", "main"), 20),
    (("custom", "main"), 2),
    (("ignored", "main"), 2),
    (("default", "other"), 4),
    (("custom", "other"), 1),
    (("ignored", "other"), 1),
)


#: How often a program asks for debug mode: not set, off, on. On is the rarest, because asyncio's
#: debug mode takes a traceback at every callback and task: a scenario costs three times as much.
_DEBUG_WEIGHTS = ((None, 5), (False, 4), (True, 1))
#: The task factory of the program's loops: usually none. An eager one needs Python 3.12.
_TASK_FACTORIES = _pick(
    ("none", 10), ("custom", 2), ("legacy", 4), *((("eager", 2),) if hasattr(asyncio, "eager_task_factory") else ())
)
#: How the first loop fails, in mode "close" (in the others the runner would fail at its first
#: call and be used no more): the rest of the program is there to see the runner retry (L-7).
_LOOP_FAILURES = _pick(("never", 2), ("create", 1), ("set_debug", 2))


@st.composite
def _configs(draw: st.DrawFn, basics: st.SearchStrategy[RunnerConfig], kind: str) -> RunnerConfig:
    config = draw(basics)
    handler, thread = draw(_SIGNAL_SETTINGS)
    task_factory = draw(_TASK_FACTORIES)
    loop_fails = draw(_LOOP_FAILURES)
    if config.mode != "close":
        loop_fails = "never"  # drawn all the same, so that the draws after it mean the same in every mode
    debug, loop_factory = config.debug, config.loop_factory
    if loop_fails == "set_debug":
        # A failing set_debug needs the runner to call it, on a loop it makes itself (not a factory's).
        if kind == "loop":
            loop_fails = "create"
        else:
            debug, loop_factory = (False if debug is None else debug), False
    return RunnerConfig(config.mode, debug, loop_factory, handler, thread, loop_fails, task_factory)


def runner_configs(kind: str = "runner") -> st.SearchStrategy[RunnerConfig]:
    """How a program of this candidate kind constructs and holds its runner (four draws).

    First mode, debug and loop factory; then the SIGINT handler installed
    before the runner and the thread that drives it (usually the default
    handler and the main thread); then which task factory its loops get and,
    in mode ``close`` only, how its first loop fails (usually neither). Small
    tables rather than one large one: Hypothesis draws the far end of a long
    table rarely. A failing ``set_debug`` sets ``debug`` (and drops a loop
    factory) so that the runner calls it; a loop factory candidate's loop
    creation fails instead.
    """
    _check_kind(kind)
    # Mode "run" has no runner object for most of the API: the other two hold one.
    modes = (("run", 1),) if kind == "run" else (("with", 4), ("close", 4), ("run", 3))
    factories = {"run": (False,), "loop": (True,), "runner": (False, True)}[kind]
    basics = _pick(
        *(
            (RunnerConfig(mode, debug, loop_factory), mode_weight * debug_weight)
            for mode, mode_weight in modes
            for loop_factory in factories
            for debug, debug_weight in _DEBUG_WEIGHTS
        )
    )
    return _configs(basics, kind)


def _fit(calls: Tuple[Call, ...], config: RunnerConfig) -> Tuple[Call, ...]:
    """The program's calls made valid for its configuration (the same draws serve every configuration).

    Mode ``run`` has no runner object to run nested or close from a task; a
    runner driven from another thread handles no SIGINT, so no step or call
    raises one or installs a handler there. In mode ``close``, a runner whose
    first loop fails is asked for its loop first, so that the rest of the
    program shows what the failure left (L-7).
    """
    other_thread = config.thread == "other"
    if config.mode == "close" and config.loop_fails != "never":
        calls = (GetLoop(),) + calls
    if not other_thread and config.mode != "run":
        return calls

    def step(item: Step) -> Step:
        if other_thread and item.op in SIGINT_OPS:
            return Yield()
        if config.mode == "run" and isinstance(item, NestedRun):
            return NestedRun("run")
        if config.mode == "run" and isinstance(item, CloseRunner):
            return Yield()
        return with_nested_steps(item, tuple(step(inner) for inner in nested_steps(item)))

    def task(spec: TaskSpec) -> TaskSpec:
        fix = lambda steps: tuple(step(s) for s in steps)  # noqa: E731
        return TaskSpec(
            fix(spec.steps),
            OnCancel(spec.on_cancel.action, spec.on_cancel.value, fix(spec.on_cancel.steps)),
            fix(spec.finally_steps),
        )

    out: List[Call] = []
    for call in calls:
        if isinstance(call, Run):
            out.append(Run(TaskGraph(tuple(task(spec) for spec in call.main.tasks)), call.context))
        elif isinstance(call, With):
            out.append(With(_fit(call.calls, config)))
        elif not (other_thread and isinstance(call, SigintCall)):
            out.append(call)
    return tuple(out)


@st.composite
def _scenarios(draw: st.DrawFn, configs: st.SearchStrategy[RunnerConfig]) -> Scenario:
    config = draw(configs)
    return Scenario(config, _fit(draw(_PROGRAMS[config.mode, config.task_factory == "legacy"]), config))


_PROGRAMS = {(mode, legacy): _programs(mode, _FOCI[legacy]) for mode in MODES for legacy in (False, True)}
_SCENARIOS = {kind: _scenarios(runner_configs(kind)) for kind in KINDS}


def scenarios(kind: str = "runner") -> st.SearchStrategy[Scenario]:
    """Valid scenarios that a candidate of this kind can run.

    ``"runner"``: a Runner class (every mode, with or without a loop factory);
    ``"run"``: an ``asyncio.run``-like function (mode "run", no loop factory);
    ``"loop"``: a loop factory under the standard Runner (every mode, always a loop factory).
    """
    _check_kind(kind)
    return _SCENARIOS[kind]
