"""The scenario model: plain, versioned data describing one Runner program.

A scenario says *what* a program does, never *how* a runner should react: the
interpreter (``conformance.interpreter``) turns it into real asyncio code and
records what happened. Everything here is immutable, JSON round-trips exactly,
and is validated on load so that a malformed file fails with the file name and
the path of the offending field. Loading never executes code: a scenario is
data, and the only code that ever runs is the fixed interpreter.

This module is on the execution side: standard library only, Python 3.9+.

Shape (``schema`` 1)::

    {"schema": 1,
     "runner": {"mode": "with" | "close" | "run", "debug": null | true | false,
                "loop_factory": false | true,
                "sigint_handler": "default" | "custom" | "ignored",   (optional, default "default")
                "thread": "main" | "other",                           (optional, default "main")
                "loop_fails": "never" | "create" | "set_debug",       (optional, default "never")
                "task_factory": "none" | "custom" | "eager" | "legacy"},  (optional, default "none")
     "calls": [<call>, ...]}

``mode`` is how the program holds its runner: ``with`` (a ``with Runner() as r``
block around the calls), ``close`` (``r = Runner()``; the calls; closing is up
to the calls), or ``run`` (an ``asyncio.run``-like function: exactly one run
call and nothing else).

A *call* is one thing the program does from synchronous code: ``run`` a task
graph, ``run_object`` (hand ``run`` something that is not a coroutine),
``get_loop``, ``close``, ``with`` (re-enter the runner around nested calls),
``set_var`` / ``get_var`` (a context variable in the driver's own context),
``sigint`` (raise SIGINT between calls), ``construct_positional`` (construct
another runner passing an argument positionally) and ``close_loop`` (the user
closes the runner's loop).

``sigint_handler`` is the SIGINT handler installed before the runner is made:
Python's default one, a custom one (which only logs, and releases
``sigint_wait`` steps), or ``SIG_IGN``. ``thread`` says which thread drives the
runner: the main thread, or another one (where a runner handles no SIGINT at
all, so no step or call may raise one, and none may install a SIGINT handler).

``loop_fails`` makes the first event loop the program asks for fail: its
creation raises (the loop factory, or without one the event-loop policy's
``new_event_loop``), or the loop's ``set_debug`` raises (only without a loop
factory, and only when ``debug`` is set, so that the runner calls it).
``task_factory`` configures every loop the runner gets with a task factory that
logs each scenario task it makes (whether it was given a context, and the SIGINT
handler installed at that moment) and makes an ordinary ``asyncio.Task``
(``custom``), one that starts eagerly (``eager``, Python 3.12+), or, for the
main task only, a Task class without ``uncancel()`` as written before Python
3.11 (``legacy``).

A *task graph* is the main coroutine (task 0) and the tasks it and its
descendants spawn; each task is a list of steps plus what it does when it is
cancelled and in its ``finally`` block. A task is spawned either by a
``spawn`` step or as one of the children of a ``group`` step (``gather``,
``wait``, ``TaskGroup``, ``shield``, ``wait_for``). Some steps hold steps of
their own: the body of a ``timeout`` block, the body of a ``TaskGroup`` and
the ``finally`` block of an async generator.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple, Union

SCHEMA_VERSION = 1

#: Values a task may return or store in a context variable. Kept to JSON
#: scalars so that observations compare exactly and reprs are stable.
Value = Union[int, str, None]

#: The context variables a scenario may use. A fixed, small set keeps
#: generated scenarios focused and makes every name valid Python.
CONTEXT_VARS = ("a", "b", "c")

#: Exceptions a ``raise`` step can raise, by name. Exception subclasses, the
#: cancellation exception and the two exceptions that escape the event loop.
RAISABLE = ("ValueError", "RuntimeError", "CancelledError", "KeyboardInterrupt", "SystemExit")

#: Objects a ``run_object`` call hands to ``run`` instead of a fresh coroutine: not a
#: coroutine at all, or (``awaited``) a coroutine that has already run to its end (R-14).
NON_COROUTINES = ("int", "none", "lambda", "generator", "awaitable", "awaited")

MODES = ("with", "close", "run")
CONTEXTS = ("runner", "fresh", "copy")
CANCEL_ACTIONS = ("propagate", "swallow", "cleanup")
SIGINT_HANDLERS = ("default", "custom", "ignored")
THREADS = ("main", "other")
#: How the first event loop the program asks for fails (L-7), if it does.
LOOP_FAILURES = ("never", "create", "set_debug")
#: The task factory every loop of the program is configured with (R-5, R-7, R-10).
TASK_FACTORIES = ("none", "custom", "eager", "legacy")
#: The origin (as for ``raise`` steps, a path in the document) of what ``loop_fails`` makes a loop raise.
LOOP_FAILURE_ORIGIN = "$.runner.loop_fails"

#: How a ``group`` step waits for the children it spawns.
GROUP_KINDS = ("gather", "wait", "taskgroup", "shield", "wait_for")
#: ``asyncio.wait(return_when=...)``, in lower case.
RETURN_WHEN = ("all_completed", "first_completed", "first_exception")
#: Deadlines that are deterministic: one that has passed when the wait starts,
#: and one that never comes while a scenario runs.
DEADLINES = ("never", "expired")
#: What a ``nested_run`` step calls from inside the running loop: the program's
#: runner's ``run()``, or the program's ``asyncio.run``-like function.
NESTED_RUNS = ("runner", "run")

# Limits keep scenarios small enough to compare exhaustively (the number of
# leftover tasks bounds the orders the comparison may try) and files sane.
MAX_TASKS = 8
MAX_STEPS = 32
MAX_CALLS = 16
MAX_STRING = 40
#: Steps that hold steps (``timeout``, ``group``, ``agen``) nest at most this deep.
MAX_NESTING = 3


class ScenarioError(ValueError):
    """A scenario document is malformed. The message names the field."""


# ---------------------------------------------------------------- steps


@dataclass(frozen=True)
class Yield:
    """``await asyncio.sleep(0)``: give every other ready task one turn."""

    op: ClassVar[str] = "yield"


@dataclass(frozen=True)
class Spawn:
    """``asyncio.create_task`` of task ``task`` of the same graph."""

    task: int
    op: ClassVar[str] = "spawn"


@dataclass(frozen=True)
class Await:
    """Await a task spawned earlier; ``catch`` keeps its exception from propagating."""

    task: int
    catch: bool = False
    op: ClassVar[str] = "await"


@dataclass(frozen=True)
class Cancel:
    """``task.cancel(msg)`` on a task of the graph (0 is the main task)."""

    task: int
    msg: Optional[str] = None
    op: ClassVar[str] = "cancel"


@dataclass(frozen=True)
class Raise:
    """Raise a fresh exception of a type named in ``RAISABLE``."""

    exc: str
    arg: Optional[str] = None
    op: ClassVar[str] = "raise"


@dataclass(frozen=True)
class Return:
    """Return ``value`` from the task."""

    value: Value = None
    op: ClassVar[str] = "return"


@dataclass(frozen=True)
class Sigint:
    """``signal.raise_signal(SIGINT)`` from the loop's thread (handled at once)."""

    op: ClassVar[str] = "sigint"


@dataclass(frozen=True)
class SetVar:
    """Set a context variable in the task's context."""

    var: str
    value: Value = None
    op: ClassVar[str] = "set_var"


@dataclass(frozen=True)
class GetVar:
    """Read a context variable in the task's context and log what was seen."""

    var: str
    op: ClassVar[str] = "get_var"


@dataclass(frozen=True)
class AsyncGen:
    """Start an async generator that has a ``finally`` and leave it unfinished.

    The interpreter keeps a reference to it, so only the runner's
    ``shutdown_asyncgens`` (or a missing one) decides when it is finalized.
    ``finally_steps`` run in its ``finally`` block, inside ``aclose()``: only
    ``yield`` (awaiting while being finalized) and ``raise`` of an
    ``Exception`` or a cancellation (an error the loop reports) are allowed
    there, see ``AGEN_FINALLY_OPS``: a ``KeyboardInterrupt`` would stop the
    loop part-way through finalizing generators, which ``shutdown_asyncgens``
    closes in an order CPython leaves open.
    """

    finally_steps: Tuple[Step, ...] = ()
    op: ClassVar[str] = "agen"


@dataclass(frozen=True)
class Executor:
    """Submit work to the loop's default executor, awaiting its result or not.

    The work itself cannot race the loop: see the interpreter for how.
    """

    wait: bool = True
    op: ClassVar[str] = "executor"


@dataclass(frozen=True)
class Group:
    """Spawn the child ``tasks`` together and wait for them the way ``how`` says.

    ``gather``: ``await asyncio.gather(*children, return_exceptions=...)``;
    ``wait``: ``await asyncio.wait(children, return_when=...)`` (logs which
    children are done and which pending, by label, never in set order);
    ``taskgroup``: ``async with asyncio.TaskGroup()``, the children created in
    it and ``steps`` as the block's body; ``shield``: ``await
    asyncio.shield(child)``; ``wait_for``: ``await asyncio.wait_for(child,
    timeout)`` with a ``deadline`` that has passed or never comes. ``catch``
    keeps an ``Exception`` the wait raises from propagating (a cancellation,
    ``KeyboardInterrupt`` and ``SystemExit`` always propagate). Options that do
    not apply to ``how`` keep their defaults (see ``GROUP_OPTIONS``).
    """

    how: str
    tasks: Tuple[int, ...]
    return_exceptions: bool = False
    return_when: str = "all_completed"
    deadline: str = "never"
    catch: bool = False
    steps: Tuple[Step, ...] = ()
    op: ClassVar[str] = "group"


@dataclass(frozen=True)
class Timeout:
    """``async with asyncio.timeout(...)`` around ``steps``: a deadline that has passed or never comes.

    ``catch`` keeps the ``TimeoutError`` (or any ``Exception`` leaving the
    block) from propagating.
    """

    deadline: str = "never"
    catch: bool = False
    steps: Tuple[Step, ...] = ()
    op: ClassVar[str] = "timeout"


@dataclass(frozen=True)
class Uncancel:
    """``asyncio.current_task().uncancel()``; logs the count it returns."""

    op: ClassVar[str] = "uncancel"


@dataclass(frozen=True)
class StopLoop:
    """``asyncio.get_running_loop().stop()`` from user code (R-13)."""

    op: ClassVar[str] = "stop_loop"


@dataclass(frozen=True)
class NestedRun:
    """Call ``run`` from inside the running loop with a fresh coroutine (R-2, A-2); logs what it raised.

    ``how`` is ``runner`` (the program's runner's ``run()``; not in mode
    ``run``, which has no runner object) or ``run`` (the program's
    ``asyncio.run``-like function; for a Runner class that is ``with
    Runner() as r: r.run(...)``).
    """

    how: str = "runner"
    op: ClassVar[str] = "nested_run"


@dataclass(frozen=True)
class SigintWait:
    """Block until a SIGINT sent by another process arrives while the loop has nothing else to do.

    The task awaits a future that only the signal can release: the runner's
    handler cancels the main task (so only the main task may do this), a
    custom handler resolves the future, the default one raises
    ``KeyboardInterrupt`` in the loop. A helper process sends the signal only
    once the loop's thread is blocked waiting for I/O, so where it lands is
    decided by the scenario, not by timing. See ``conformance.outside``.
    """

    op: ClassVar[str] = "sigint_wait"


@dataclass(frozen=True)
class CloseRunner:
    """``runner.close()`` from inside a task of the runner's own running loop (C-6); logs what it raised.

    Not in mode ``run``, which has no runner object.
    """

    op: ClassVar[str] = "close_runner"


@dataclass(frozen=True)
class InterruptMain:
    """``_thread.interrupt_main()`` from the loop's thread: a simulated SIGINT, handled at once (S-6)."""

    op: ClassVar[str] = "interrupt_main"


@dataclass(frozen=True)
class SetSigintHandler:
    """Install the program's own SIGINT handler (the one ``sigint_handler: custom`` names) during a run (R-11)."""

    op: ClassVar[str] = "set_sigint_handler"


Step = Union[
    Yield,
    Spawn,
    Await,
    Cancel,
    Raise,
    Return,
    Sigint,
    SetVar,
    GetVar,
    AsyncGen,
    Executor,
    Group,
    Timeout,
    Uncancel,
    StopLoop,
    NestedRun,
    SigintWait,
    CloseRunner,
    InterruptMain,
    SetSigintHandler,
]
STEP_TYPES: Tuple[type, ...] = (
    Yield,
    Spawn,
    Await,
    Cancel,
    Raise,
    Return,
    Sigint,
    SetVar,
    GetVar,
    AsyncGen,
    Executor,
    Group,
    Timeout,
    Uncancel,
    StopLoop,
    NestedRun,
    SigintWait,
    CloseRunner,
    InterruptMain,
    SetSigintHandler,
)
#: Steps that raise a SIGINT or install a SIGINT handler, which a runner driven from another thread
#: must not meet (it handles no SIGINT, and only the main thread may install a handler).
SIGINT_OPS = ("sigint", "sigint_wait", "interrupt_main", "set_sigint_handler")

#: The options of a ``group`` step that apply to each ``how`` (the others must keep their defaults).
GROUP_OPTIONS: Dict[str, Tuple[str, ...]] = {
    "gather": ("return_exceptions", "catch"),
    "wait": ("return_when",),
    "taskgroup": ("catch", "steps"),
    "shield": ("catch",),
    "wait_for": ("deadline", "catch"),
}
#: Group kinds that wait for exactly one child.
SINGLE_CHILD_GROUPS = ("shield", "wait_for")
#: Steps allowed in an async generator's ``finally`` block.
AGEN_FINALLY_OPS = ("yield", "raise")


def nested_steps(step: Step) -> Tuple[Step, ...]:
    """The steps a step holds (a ``timeout`` or ``TaskGroup`` body, an async generator's ``finally``)."""
    if isinstance(step, (Group, Timeout)):
        return step.steps
    if isinstance(step, AsyncGen):
        return step.finally_steps
    return ()


def with_nested_steps(step: Step, steps: Tuple[Step, ...]) -> Step:
    """``step`` holding ``steps`` instead of its own (a step that holds none is returned as it is)."""
    if isinstance(step, (Group, Timeout)):
        return dataclasses.replace(step, steps=steps)
    if isinstance(step, AsyncGen):
        return dataclasses.replace(step, finally_steps=steps)
    return step


def walk_steps(steps: Tuple[Step, ...]) -> Iterator[Step]:
    """Every step of a list, depth-first, each step before the steps it holds."""
    for step in steps:
        yield step
        yield from walk_steps(nested_steps(step))


def spawned_by(step: Step) -> Tuple[int, ...]:
    """The tasks a step itself spawns (not those of the steps it holds)."""
    if isinstance(step, Spawn):
        return (step.task,)
    if isinstance(step, Group):
        return step.tasks
    return ()


# ------------------------------------------------------- tasks and graphs


@dataclass(frozen=True)
class OnCancel:
    """What a task does when a ``CancelledError`` reaches its body.

    ``propagate`` re-raises it untouched; ``swallow`` returns ``value``;
    ``cleanup`` runs ``steps`` (which may await) and then re-raises.
    """

    action: str = "propagate"
    value: Value = None
    steps: Tuple[Step, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """One coroutine: its body, its cancellation handling, its ``finally`` steps."""

    steps: Tuple[Step, ...] = ()
    on_cancel: OnCancel = OnCancel()
    finally_steps: Tuple[Step, ...] = ()

    def all_steps(self) -> Tuple[Step, ...]:
        """Every step of the task, those held by other steps (timeout bodies, ...) included."""
        return tuple(walk_steps(self.steps + self.on_cancel.steps + self.finally_steps))


@dataclass(frozen=True)
class TaskGraph:
    """Task 0 is the main coroutine handed to ``run``; the others are spawned."""

    tasks: Tuple[TaskSpec, ...] = (TaskSpec(),)


# ---------------------------------------------------------------- calls


@dataclass(frozen=True)
class Run:
    """``runner.run(main)`` with the runner's context, a fresh one, or a copy."""

    main: TaskGraph = TaskGraph()
    context: str = "runner"
    call: ClassVar[str] = "run"


@dataclass(frozen=True)
class RunObject:
    """``runner.run(obj)`` where ``obj`` is not a coroutine (see ``NON_COROUTINES``)."""

    object: str = "int"
    call: ClassVar[str] = "run_object"


@dataclass(frozen=True)
class GetLoop:
    """``runner.get_loop()``."""

    call: ClassVar[str] = "get_loop"


@dataclass(frozen=True)
class Close:
    """``runner.close()``."""

    call: ClassVar[str] = "close"


@dataclass(frozen=True)
class With:
    """``with runner: <calls>``, entering the same runner again."""

    calls: Tuple[Call, ...] = ()
    call: ClassVar[str] = "with"


@dataclass(frozen=True)
class SetVarCall:
    """Set a context variable in the driver's own (synchronous) context."""

    var: str
    value: Value = None
    call: ClassVar[str] = "set_var"


@dataclass(frozen=True)
class GetVarCall:
    """Read a context variable in the driver's own context."""

    var: str
    call: ClassVar[str] = "get_var"


@dataclass(frozen=True)
class SigintCall:
    """Raise SIGINT from synchronous code, between runner calls."""

    call: ClassVar[str] = "sigint"


@dataclass(frozen=True)
class ConstructPositional:
    """``type(runner)(debug)``: construct another runner passing ``debug`` positionally (I-1)."""

    call: ClassVar[str] = "construct_positional"


@dataclass(frozen=True)
class CloseLoop:
    """``runner.get_loop().close()``: the user closes the runner's loop (R-15)."""

    call: ClassVar[str] = "close_loop"


Call = Union[Run, RunObject, GetLoop, Close, With, SetVarCall, GetVarCall, SigintCall, ConstructPositional, CloseLoop]
CALL_TYPES: Tuple[type, ...] = (
    Run,
    RunObject,
    GetLoop,
    Close,
    With,
    SetVarCall,
    GetVarCall,
    SigintCall,
    ConstructPositional,
    CloseLoop,
)


@dataclass(frozen=True)
class RunnerConfig:
    """How the program constructs and holds its runner, and in which thread and SIGINT setting."""

    mode: str = "with"
    debug: Optional[bool] = None
    loop_factory: bool = False
    sigint_handler: str = "default"
    thread: str = "main"
    loop_fails: str = "never"
    task_factory: str = "none"


@dataclass(frozen=True)
class Scenario:
    runner: RunnerConfig = RunnerConfig()
    calls: Tuple[Call, ...] = ()

    def to_json(self) -> Dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "runner": _plain(self.runner), "calls": [_plain(c) for c in self.calls]}

    def dumps(self) -> str:
        """Canonical text: the same scenario always gives the same bytes."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def runs(self) -> List[Run]:
        """Every ``run`` call, in the order the program makes them (nested ``with`` included)."""
        return [c for c in iter_calls(self.calls) if isinstance(c, Run)]

    def size(self) -> int:
        """A measure of complexity: smaller is simpler (used to keep the smallest example)."""
        total = 0
        for c in iter_calls(self.calls):
            total += 1
            if isinstance(c, Run):
                for task in c.main.tasks:
                    total += 1 + len(task.all_steps()) + (task.on_cancel.action != "propagate")
        return total


def iter_calls(calls: Tuple[Call, ...]):
    """All calls depth-first, nested ``with`` bodies after their ``with``."""
    for c in calls:
        yield c
        if isinstance(c, With):
            yield from iter_calls(c.calls)


#: Per dataclass: its tag (``op`` or ``call``, if any) and (attribute, JSON key) of each field, in order.
_Layout = Tuple[Tuple[Tuple[str, str], ...], Tuple[Tuple[str, str], ...]]
_LAYOUTS: Dict[type, _Layout] = {}
#: Fields whose JSON key is not their name (Python keywords).
_KEYS = {"finally_steps": "finally", "wait": "await"}


def _layout(cls: type) -> _Layout:
    """How ``_plain`` writes an instance of ``cls``; worked out once per class (``dataclasses.fields`` is slow)."""
    tag: Tuple[Tuple[str, str], ...] = ()
    if issubclass(cls, STEP_TYPES):
        tag = (("op", cls.op),)  # type: ignore[attr-defined]
    elif issubclass(cls, CALL_TYPES):
        tag = (("call", cls.call),)  # type: ignore[attr-defined]
    return tag, tuple((f.name, _KEYS.get(f.name, f.name)) for f in dataclasses.fields(cls))


def _plain(obj: Any) -> Any:
    """Dataclass → JSON-able dict, adding the ``op`` / ``call`` tag of steps and calls."""
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    layout = _LAYOUTS.get(type(obj))
    if layout is None:
        if not dataclasses.is_dataclass(obj):
            return obj
        layout = _LAYOUTS[type(obj)] = _layout(type(obj))
    tag, names = layout
    out: Dict[str, Any] = dict(tag)
    for name, key in names:
        out[key] = _plain(getattr(obj, name))
    if isinstance(obj, OnCancel):
        # Only the fields the action uses, so that the canonical form validates.
        out = {k: v for k, v in out.items() if k == "action" or (k == "value") == (obj.action == "swallow")}
        if obj.action != "cleanup":
            out.pop("steps", None)
    if isinstance(obj, TaskSpec):
        if obj.on_cancel == OnCancel():
            del out["on_cancel"]
        if not obj.finally_steps:
            del out["finally"]
    if isinstance(obj, AsyncGen) and not obj.finally_steps:
        del out["finally"]  # as before generators had a finally block of steps
    if isinstance(obj, Group):
        # The options that apply to its kind, and any other that was set (which the loader refuses).
        plain = Group(obj.how, obj.tasks)
        applicable = GROUP_OPTIONS.get(obj.how, ())
        out = {
            key: value
            for key, value in out.items()
            if key in ("op", "how", "tasks") or key in applicable or getattr(obj, key) != getattr(plain, key)
        }
    if isinstance(obj, RunnerConfig):
        # Left out at their defaults, so that scenarios written before they existed keep their text.
        for key in ("sigint_handler", "thread", "loop_fails", "task_factory"):
            if out[key] == getattr(RunnerConfig(), key):
                del out[key]
    return out


# -------------------------------------------------------------- loading


_STEP_FIELDS: Dict[str, Tuple[str, ...]] = {
    "yield": (),
    "spawn": ("task",),
    "await": ("task", "catch"),
    "cancel": ("task", "msg"),
    "raise": ("exc", "arg"),
    "return": ("value",),
    "sigint": (),
    "set_var": ("var", "value"),
    "get_var": ("var",),
    "agen": ("finally",),
    "executor": ("await",),
    "group": ("how", "tasks", "return_exceptions", "return_when", "deadline", "catch", "steps"),
    "timeout": ("deadline", "catch", "steps"),
    "uncancel": (),
    "stop_loop": (),
    "nested_run": ("how",),
    "sigint_wait": (),
    "close_runner": (),
    "interrupt_main": (),
    "set_sigint_handler": (),
}
_REQUIRED_STEP_FIELDS: Dict[str, Tuple[str, ...]] = {"group": ("how", "tasks")}
_ALL_STEP_FIELDS = tuple(sorted({name for names in _STEP_FIELDS.values() for name in names}))
_ALL_OPS = tuple(t.op for t in STEP_TYPES)


@dataclass(frozen=True)
class _Where:
    """Where a step list is: the graph's size, whose task it belongs to, how deep it is held, what it may hold."""

    n_tasks: int
    task: int
    depth: int = 0
    ops: Tuple[str, ...] = _ALL_OPS


_BARE_YIELD = {"op": "yield"}


class _Reader:
    """Validates one JSON document, tracking the path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source
        # The runner configuration decides what some steps may do; read before the calls.
        self.mode = "with"
        self.thread = "main"

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {path}: {message}")

    def obj(self, value: Any, path: str, required: Tuple[str, ...], optional: Tuple[str, ...] = ()) -> Dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing field {key!r}")
        unknown = [key for key in value if key not in required and key not in optional]
        if unknown:
            raise self.fail(f"{path}.{min(unknown)}", "unknown field")
        return value

    def choice(self, value: Any, path: str, allowed: Tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(path, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def boolean(self, value: Any, path: str, nullable: bool = False) -> Optional[bool]:
        if value is None and nullable:
            return None
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false{' or null' if nullable else ''}, got {value!r}")
        return value

    def value(self, value: Any, path: str) -> Value:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            if isinstance(value, int) and not -(2**31) <= value < 2**31:
                raise self.fail(path, "integer out of range")
            return value
        return self.string(value, path)

    def string(self, value: Any, path: str, nullable: bool = False) -> Optional[str]:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or len(value) > MAX_STRING or not value.isprintable():
            raise self.fail(path, f"expected a printable string of at most {MAX_STRING} characters, got {value!r}")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(path, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def array(self, value: Any, path: str, limit: int) -> List[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array, got {type(value).__name__}")
        if len(value) > limit:
            raise self.fail(path, f"at most {limit} entries allowed, got {len(value)}")
        return value

    # -- steps, tasks, calls

    def step(self, raw: Any, path: str, where: _Where) -> Step:
        if raw == _BARE_YIELD and "yield" in where.ops:
            return Yield()  # half of all steps: nothing else to check
        if not isinstance(raw, dict) or "op" not in raw:
            self.obj(raw, path, ("op",))  # fails, saying why
        if not isinstance(raw["op"], str) or raw["op"] not in _STEP_FIELDS:
            self.obj(raw, path, ("op",), _ALL_STEP_FIELDS)  # an unknown field is reported before an unknown op
        op = self.choice(raw["op"], f"{path}.op", where.ops)
        self.obj(raw, path, ("op",) + _REQUIRED_STEP_FIELDS.get(op, ()), _STEP_FIELDS[op])
        task = lambda low: self.integer(raw.get("task"), f"{path}.task", low, where.n_tasks - 1)  # noqa: E731
        var = lambda: self.choice(raw.get("var"), f"{path}.var", CONTEXT_VARS)  # noqa: E731
        if op in SIGINT_OPS and self.thread == "other":
            raise self.fail(f"{path}.op", "a runner driven from another thread handles no SIGINT: no SIGINT here")
        if op == "yield":
            return Yield()
        if op == "spawn":
            return Spawn(task(1))
        if op == "await":
            return Await(task(1), bool(self.boolean(raw.get("catch", False), f"{path}.catch")))
        if op == "cancel":
            return Cancel(task(0), self.string(raw.get("msg"), f"{path}.msg", nullable=True))
        if op == "raise":
            return Raise(
                self.choice(raw.get("exc"), f"{path}.exc", RAISABLE),
                self.string(raw.get("arg"), f"{path}.arg", nullable=True),
            )
        if op == "return":
            return Return(self.value(raw.get("value"), f"{path}.value"))
        if op == "sigint":
            return Sigint()
        if op == "set_var":
            return SetVar(var(), self.value(raw.get("value"), f"{path}.value"))
        if op == "get_var":
            return GetVar(var())
        if op == "agen":
            finally_steps = self.nested(raw.get("finally", []), f"{path}.finally", where, AGEN_FINALLY_OPS)
            for position, inner in enumerate(finally_steps):
                if isinstance(inner, Raise) and inner.exc in ("KeyboardInterrupt", "SystemExit"):
                    # It would stop the loop part-way through finalizing the generators, which
                    # shutdown_asyncgens closes in an order CPython leaves open.
                    raise self.fail(
                        f"{path}.finally[{position}].exc", "an async generator's finally may raise only an Exception"
                    )
            return AsyncGen(finally_steps)
        if op == "executor":
            return Executor(bool(self.boolean(raw.get("await", True), f"{path}.await")))
        if op == "group":
            return self.group(raw, path, where)
        if op == "timeout":
            return Timeout(
                self.choice(raw.get("deadline", "never"), f"{path}.deadline", DEADLINES),
                bool(self.boolean(raw.get("catch", False), f"{path}.catch")),
                self.nested(raw.get("steps", []), f"{path}.steps", where),
            )
        if op == "uncancel":
            return Uncancel()
        if op == "stop_loop":
            return StopLoop()
        if op == "nested_run":
            how = self.choice(raw.get("how", "runner"), f"{path}.how", NESTED_RUNS)
            if how == "runner" and self.mode == "run":
                raise self.fail(f"{path}.how", "mode 'run' has no runner object; use 'run'")
            return NestedRun(how)
        if op == "close_runner":
            if self.mode == "run":
                raise self.fail(f"{path}.op", "mode 'run' has no runner object to close")
            return CloseRunner()
        if op == "interrupt_main":
            return InterruptMain()
        if op == "set_sigint_handler":
            return SetSigintHandler()
        if where.task != 0:
            raise self.fail(f"{path}.op", "only the main task (task 0) may wait for an outside SIGINT")
        return SigintWait()

    def group(self, raw: Dict[str, Any], path: str, where: _Where) -> Group:
        how = self.choice(raw["how"], f"{path}.how", GROUP_KINDS)
        for option in sorted(set(raw) - {"op", "how", "tasks"} - set(GROUP_OPTIONS[how])):
            raise self.fail(f"{path}.{option}", f"a {how!r} group has no {option!r}")
        children = self.array(raw["tasks"], f"{path}.tasks", MAX_TASKS - 1)
        tasks = tuple(self.integer(t, f"{path}.tasks[{i}]", 1, where.n_tasks - 1) for i, t in enumerate(children))
        if not tasks:
            raise self.fail(f"{path}.tasks", "a group needs at least one task")
        if len(set(tasks)) != len(tasks):
            raise self.fail(f"{path}.tasks", "a group names each task once")
        if how in SINGLE_CHILD_GROUPS and len(tasks) != 1:
            raise self.fail(f"{path}.tasks", f"a {how!r} group waits for exactly one task")
        return Group(
            how,
            tasks,
            bool(self.boolean(raw.get("return_exceptions", False), f"{path}.return_exceptions")),
            self.choice(raw.get("return_when", "all_completed"), f"{path}.return_when", RETURN_WHEN),
            self.choice(raw.get("deadline", "never"), f"{path}.deadline", DEADLINES),
            bool(self.boolean(raw.get("catch", False), f"{path}.catch")),
            self.nested(raw.get("steps", []), f"{path}.steps", where),
        )

    def nested(self, raw: Any, path: str, where: _Where, ops: Optional[Tuple[str, ...]] = None) -> Tuple[Step, ...]:
        """The steps held by a step: one level deeper, and possibly only some kinds."""
        inner = _Where(where.n_tasks, where.task, where.depth + 1, ops or _ALL_OPS)
        if inner.depth > MAX_NESTING and raw:
            raise self.fail(path, f"steps that hold steps nest at most {MAX_NESTING} deep")
        return self.steps(raw, path, inner)

    def steps(self, raw: Any, path: str, where: _Where) -> Tuple[Step, ...]:
        return tuple(self.step(s, f"{path}[{i}]", where) for i, s in enumerate(self.array(raw, path, MAX_STEPS)))

    def task(self, raw: Any, path: str, n_tasks: int, index: int) -> TaskSpec:
        self.obj(raw, path, ("steps",), ("on_cancel", "finally"))
        where = _Where(n_tasks, index)
        on_cancel = OnCancel()
        if "on_cancel" in raw:
            oc_path = f"{path}.on_cancel"
            oc = self.obj(raw["on_cancel"], oc_path, ("action",), ("value", "steps"))
            action = self.choice(oc["action"], f"{oc_path}.action", CANCEL_ACTIONS)
            if "value" in oc and action != "swallow":
                raise self.fail(f"{oc_path}.value", "only a 'swallow' handler returns a value")
            if oc.get("steps") and action != "cleanup":
                raise self.fail(f"{oc_path}.steps", "only a 'cleanup' handler has steps")
            on_cancel = OnCancel(
                action,
                self.value(oc.get("value"), f"{oc_path}.value"),
                self.steps(oc.get("steps", []), f"{oc_path}.steps", where),
            )
        return TaskSpec(
            self.steps(raw["steps"], f"{path}.steps", where),
            on_cancel,
            self.steps(raw.get("finally", []), f"{path}.finally", where),
        )

    def graph(self, raw: Any, path: str) -> TaskGraph:
        tasks_raw = self.array(self.obj(raw, path, ("tasks",))["tasks"], f"{path}.tasks", MAX_TASKS)
        if not tasks_raw:
            raise self.fail(f"{path}.tasks", "a graph needs at least the main task")
        tasks = tuple(self.task(t, f"{path}.tasks[{i}]", len(tasks_raw), i) for i, t in enumerate(tasks_raw))
        check_spawn_tree(tasks, lambda message: self.fail(f"{path}.tasks", message))
        return TaskGraph(tasks)

    def call(self, raw: Any, path: str, mode: str, depth: int) -> Call:
        kind = self.obj(raw, path, ("call",), ("main", "context", "object", "calls", "var", "value"))["call"]
        kind = self.choice(kind, f"{path}.call", tuple(t.call for t in CALL_TYPES))
        if mode == "run" and kind not in ("run", "run_object"):
            raise self.fail(f"{path}.call", "mode 'run' allows only one run or run_object call")
        if kind == "run":
            self.obj(raw, path, ("call", "main"), ("context",))
            context = self.choice(raw.get("context", "runner"), f"{path}.context", CONTEXTS)
            if mode == "run" and context != "runner":
                raise self.fail(f"{path}.context", "an asyncio.run-like function takes no context")
            return Run(self.graph(raw["main"], f"{path}.main"), context)
        if kind == "run_object":
            self.obj(raw, path, ("call", "object"))
            return RunObject(self.choice(raw["object"], f"{path}.object", NON_COROUTINES))
        if kind == "with":
            self.obj(raw, path, ("call", "calls"))
            if depth >= 3:
                raise self.fail(path, "'with' calls nest at most 3 deep")
            return With(self.calls(raw["calls"], f"{path}.calls", mode, depth + 1))
        if kind in ("set_var", "get_var"):
            self.obj(raw, path, ("call", "var"), ("value",) if kind == "set_var" else ())
            var = self.choice(raw["var"], f"{path}.var", CONTEXT_VARS)
            if kind == "get_var":
                return GetVarCall(var)
            return SetVarCall(var, self.value(raw.get("value"), f"{path}.value"))
        self.obj(raw, path, ("call",))
        if kind == "sigint" and self.thread == "other":
            raise self.fail(f"{path}.call", "a runner driven from another thread handles no SIGINT: no SIGINT here")
        simple = {
            "get_loop": GetLoop,
            "close": Close,
            "sigint": SigintCall,
            "construct_positional": ConstructPositional,
            "close_loop": CloseLoop,
        }
        return simple[kind]()

    def config(self, raw: Any) -> RunnerConfig:
        optional = ("debug", "loop_factory", "sigint_handler", "thread", "loop_fails", "task_factory")
        r = self.obj(raw, "$.runner", ("mode",), optional)
        config = RunnerConfig(
            self.choice(r["mode"], "$.runner.mode", MODES),
            self.boolean(r.get("debug"), "$.runner.debug", nullable=True),
            bool(self.boolean(r.get("loop_factory", False), "$.runner.loop_factory")),
            self.choice(r.get("sigint_handler", "default"), "$.runner.sigint_handler", SIGINT_HANDLERS),
            self.choice(r.get("thread", "main"), "$.runner.thread", THREADS),
            self.choice(r.get("loop_fails", "never"), "$.runner.loop_fails", LOOP_FAILURES),
            self.choice(r.get("task_factory", "none"), "$.runner.task_factory", TASK_FACTORIES),
        )
        if config.loop_fails == "set_debug" and (config.debug is None or config.loop_factory):
            # The runner calls set_debug only when debug is set; a factory's loop may not let it be replaced.
            raise self.fail("$.runner.loop_fails", "'set_debug' needs debug true or false and no loop factory")
        return config

    def calls(self, raw: Any, path: str, mode: str, depth: int = 0) -> Tuple[Call, ...]:
        return tuple(self.call(c, f"{path}[{i}]", mode, depth) for i, c in enumerate(self.array(raw, path, MAX_CALLS)))

    def scenario(self, raw: Any) -> Scenario:
        self.obj(raw, "$", ("schema", "runner", "calls"))
        if type(raw["schema"]) is not int or raw["schema"] != SCHEMA_VERSION:
            raise self.fail("$.schema", f"unsupported schema {raw['schema']!r} (this version reads {SCHEMA_VERSION})")
        config = self.config(raw["runner"])
        self.mode, self.thread = config.mode, config.thread
        calls = self.calls(raw["calls"], "$.calls", config.mode)
        if config.mode == "run" and len(calls) != 1:
            raise self.fail("$.calls", "mode 'run' needs exactly one run or run_object call")
        return Scenario(config, calls)


def check_spawn_tree(tasks: Tuple[TaskSpec, ...], fail: Callable[[str], Exception]) -> None:
    """Every task but the main one is spawned by exactly one step of an ancestor.

    This keeps the graph a tree rooted at the main task, so that no task is dead
    weight and a scenario always means one well-defined program. A task awaits
    only its own children: waits then follow the tree and can never form a
    cycle, so every scenario terminates under a correct runner. (A ``spawn``
    step spawns one task; a ``group`` step spawns each of its tasks.)
    """
    parent: Dict[int, int] = {}
    steps_of = [task.all_steps() for task in tasks]
    for index, steps in enumerate(steps_of):
        for step in steps:
            for child in spawned_by(step):
                if child in parent:
                    raise fail(f"task {child} is spawned more than once")
                parent[child] = index
    for index, steps in enumerate(steps_of):
        for step in steps:
            if isinstance(step, Await) and parent.get(step.task) != index:
                raise fail(f"task {index} awaits task {step.task}, which it does not spawn")
    for index in range(1, len(tasks)):
        seen = {index}
        node = index
        while node != 0:
            if node not in parent:
                raise fail(f"task {index} is never spawned from the main task's tree")
            node = parent[node]
            if node in seen:
                raise fail(f"task {index} is part of a spawn cycle")
            seen.add(node)


def from_json(raw: Any, source: str = "<scenario>") -> Scenario:
    """Validate a parsed JSON document and build the scenario it describes."""
    return _Reader(source).scenario(raw)


def loads(text: str, source: str = "<scenario>") -> Scenario:
    return from_json(_parse_json(text, source), source)


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{source}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: JSON nested too deeply") from None


def load_file(path: str) -> List[Scenario]:
    """Load a scenario file: one scenario object, or a JSON array of them.

    Also accepts a findings file written by ``conformance run --json`` and takes
    the smallest scenario of each divergence group from it.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text") from None
    raw = _parse_json(text, path)
    if isinstance(raw, dict) and "divergences" in raw:
        groups = _Reader(path).array(raw["divergences"], "$.divergences", 10_000)
        return [
            _Reader(f"{path}: $.divergences[{i}].scenario").scenario(
                group.get("scenario") if isinstance(group, dict) else group
            )
            for i, group in enumerate(groups)
        ]
    if isinstance(raw, list):
        return [_Reader(f"{path}: [{i}]").scenario(item) for i, item in enumerate(raw)]
    return [_Reader(path).scenario(raw)]
