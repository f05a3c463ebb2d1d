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
                "loop_factory": false | true},
     "calls": [<call>, ...]}

``mode`` is how the program holds its runner: ``with`` (a ``with Runner() as r``
block around the calls), ``close`` (``r = Runner()``; the calls; closing is up
to the calls), or ``run`` (an ``asyncio.run``-like function: exactly one run
call and nothing else).

A *call* is one thing the program does from synchronous code: ``run`` a task
graph, ``run_object`` (hand ``run`` something that is not a coroutine),
``get_loop``, ``close``, ``with`` (re-enter the runner around nested calls),
``set_var`` / ``get_var`` (a context variable in the driver's own context) and
``sigint`` (raise SIGINT between calls).

A *task graph* is the main coroutine (task 0) and the tasks it and its
descendants spawn; each task is a list of steps plus what it does when it is
cancelled and in its ``finally`` block.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Union

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

#: Objects a ``run_object`` call hands to ``run`` instead of a coroutine.
NON_COROUTINES = ("int", "none", "lambda", "generator", "awaitable")

MODES = ("with", "close", "run")
CONTEXTS = ("runner", "fresh", "copy")
CANCEL_ACTIONS = ("propagate", "swallow", "cleanup")

# Limits keep scenarios small enough to compare exhaustively (the number of
# leftover tasks bounds the orders the comparison may try) and files sane.
MAX_TASKS = 8
MAX_STEPS = 32
MAX_CALLS = 16
MAX_STRING = 40


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
    """

    op: ClassVar[str] = "agen"


@dataclass(frozen=True)
class Executor:
    """Submit work to the loop's default executor, awaiting its result or not.

    The work itself cannot race the loop: see the interpreter for how.
    """

    wait: bool = True
    op: ClassVar[str] = "executor"


Step = Union[Yield, Spawn, Await, Cancel, Raise, Return, Sigint, SetVar, GetVar, AsyncGen, Executor]
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
)


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
        return self.steps + self.on_cancel.steps + self.finally_steps


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


Call = Union[Run, RunObject, GetLoop, Close, With, SetVarCall, GetVarCall, SigintCall]
CALL_TYPES: Tuple[type, ...] = (Run, RunObject, GetLoop, Close, With, SetVarCall, GetVarCall, SigintCall)


@dataclass(frozen=True)
class RunnerConfig:
    """How the program constructs and holds its runner."""

    mode: str = "with"
    debug: Optional[bool] = None
    loop_factory: bool = False


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


def _plain(obj: Any) -> Any:
    """Dataclass → JSON-able dict, adding the ``op`` / ``call`` tag of steps and calls."""
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    if not dataclasses.is_dataclass(obj):
        return obj
    out: Dict[str, Any] = {}
    tag = getattr(type(obj), "op", None) or getattr(type(obj), "call", None)
    if isinstance(obj, STEP_TYPES):
        out["op"] = tag
    elif isinstance(obj, CALL_TYPES):
        out["call"] = tag
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = "finally" if f.name == "finally_steps" else ("await" if f.name == "wait" else f.name)
        out[key] = _plain(value)
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
    return out


# -------------------------------------------------------------- loading


class _Reader:
    """Validates one JSON document, tracking the path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {path}: {message}")

    def obj(self, value: Any, path: str, required: Tuple[str, ...], optional: Tuple[str, ...] = ()) -> Dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing field {key!r}")
        unknown = sorted(set(value) - set(required) - set(optional))
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}", "unknown field")
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

    def step(self, raw: Any, path: str, n_tasks: int) -> Step:
        op = self.obj(raw, path, ("op",), ("task", "catch", "msg", "exc", "arg", "value", "var", "await"))["op"]
        op = self.choice(op, f"{path}.op", tuple(t.op for t in STEP_TYPES))
        fields_by_op = {
            "yield": (),
            "spawn": ("task",),
            "await": ("task", "catch"),
            "cancel": ("task", "msg"),
            "raise": ("exc", "arg"),
            "return": ("value",),
            "sigint": (),
            "set_var": ("var", "value"),
            "get_var": ("var",),
            "agen": (),
            "executor": ("await",),
        }
        self.obj(raw, path, ("op",), fields_by_op[op])
        task = lambda low: self.integer(raw.get("task"), f"{path}.task", low, n_tasks - 1)  # noqa: E731
        var = lambda: self.choice(raw.get("var"), f"{path}.var", CONTEXT_VARS)  # noqa: E731
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
            return AsyncGen()
        return Executor(bool(self.boolean(raw.get("await", True), f"{path}.await")))

    def steps(self, raw: Any, path: str, n_tasks: int) -> Tuple[Step, ...]:
        return tuple(self.step(s, f"{path}[{i}]", n_tasks) for i, s in enumerate(self.array(raw, path, MAX_STEPS)))

    def task(self, raw: Any, path: str, n_tasks: int) -> TaskSpec:
        self.obj(raw, path, ("steps",), ("on_cancel", "finally"))
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
                self.steps(oc.get("steps", []), f"{oc_path}.steps", n_tasks),
            )
        return TaskSpec(
            self.steps(raw["steps"], f"{path}.steps", n_tasks),
            on_cancel,
            self.steps(raw.get("finally", []), f"{path}.finally", n_tasks),
        )

    def graph(self, raw: Any, path: str) -> TaskGraph:
        tasks_raw = self.array(self.obj(raw, path, ("tasks",))["tasks"], f"{path}.tasks", MAX_TASKS)
        if not tasks_raw:
            raise self.fail(f"{path}.tasks", "a graph needs at least the main task")
        tasks = tuple(self.task(t, f"{path}.tasks[{i}]", len(tasks_raw)) for i, t in enumerate(tasks_raw))
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
        return {"get_loop": GetLoop, "close": Close, "sigint": SigintCall}[kind]()

    def calls(self, raw: Any, path: str, mode: str, depth: int = 0) -> Tuple[Call, ...]:
        return tuple(self.call(c, f"{path}[{i}]", mode, depth) for i, c in enumerate(self.array(raw, path, MAX_CALLS)))

    def scenario(self, raw: Any) -> Scenario:
        self.obj(raw, "$", ("schema", "runner", "calls"))
        if type(raw["schema"]) is not int or raw["schema"] != SCHEMA_VERSION:
            raise self.fail("$.schema", f"unsupported schema {raw['schema']!r} (this version reads {SCHEMA_VERSION})")
        r = self.obj(raw["runner"], "$.runner", ("mode",), ("debug", "loop_factory"))
        config = RunnerConfig(
            self.choice(r["mode"], "$.runner.mode", MODES),
            self.boolean(r.get("debug"), "$.runner.debug", nullable=True),
            bool(self.boolean(r.get("loop_factory", False), "$.runner.loop_factory")),
        )
        calls = self.calls(raw["calls"], "$.calls", config.mode)
        if config.mode == "run" and len(calls) != 1:
            raise self.fail("$.calls", "mode 'run' needs exactly one run or run_object call")
        return Scenario(config, calls)


def check_spawn_tree(tasks: Tuple[TaskSpec, ...], fail: Callable[[str], Exception]) -> None:
    """Every task but the main one is spawned by exactly one step of an ancestor.

    This keeps the graph a tree rooted at the main task, so that no task is dead
    weight and a scenario always means one well-defined program. A task awaits
    only its own children: waits then follow the tree and can never form a
    cycle, so every scenario terminates under a correct runner.
    """
    parent: Dict[int, int] = {}
    for index, task in enumerate(tasks):
        for step in task.all_steps():
            if isinstance(step, Spawn):
                if step.task in parent:
                    raise fail(f"task {step.task} is spawned more than once")
                parent[step.task] = index
    for index, task in enumerate(tasks):
        for step in task.all_steps():
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
