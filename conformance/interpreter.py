"""The interpreter: run one scenario under one target and record what happened.

``execute(scenario, target)`` builds real asyncio code from the scenario (one
coroutine per task spec, run through the target's Runner or run function) and
returns an *observation*: a JSON-able dict that the comparison
(``conformance.compare``) checks against another target's observation.

Everything an observation records is decided by the scenario and the runner,
never by a thread or timer race. That is what lets the comparison be exact
and still have no false positives:

* SIGINT is raised with ``signal.raise_signal`` from the loop's own thread, so
  the Python-level handler runs inside that call, at a known step.
* Executor work never races the loop: the loop thread blocks until the job
  has run (the job is instant), and an awaited job hands its result back
  through ``call_soon_threadsafe`` *before* the loop thread resumes, so the
  callback lands at a known place in the ready queue.
* Automatic garbage collection is off while a scenario runs, and every task,
  coroutine, async generator and runner is kept alive until the end. Then they
  are released and collected at once, so "Task was destroyed but it is
  pending!", "never retrieved" and "never awaited" reports appear in one
  known phase, and are compared as a multiset.
* The order in which a runner cancels leftover tasks is left open by CPython.
  The observation records enough (``hints``) for the comparison to find the
  order that explains a candidate's run; the reference is always given an
  explicit order so that it is reproducible on its own.
* Other orders CPython leaves open are fixed or not recorded: a ``TaskGroup``
  cancels its children in the order they were created (CPython iterates a
  ``set``, whose order depends on addresses; creation order is one of the
  orders it allows, and every side gets the same), and what ``asyncio.wait``
  returns is logged by label, never in set order.
* A SIGINT "from outside" (``sigint_wait``) comes from a helper process that
  sends it only while the loop's thread is blocked waiting for I/O, when
  nothing but that signal can make a task move on, so it lands at a point the
  scenario decides (``conformance.outside_sigint``).
* Deadlines are either already over when a wait starts (``0`` s: handled by
  the next loop iteration) or never come while a scenario runs (a day).
* ``_thread.interrupt_main()`` (``interrupt_main``) is called from the loop's
  own thread, the main one, whose next check for pending signals comes right
  after the call returns: the handler runs there, at a known step, as it does
  inside ``signal.raise_signal``.
* Loops made through the scenario's hooks (``loop_fails``, ``task_factory``:
  the loop factory is wrapped, or without one a policy makes the loops) are
  labelled as they are made, in the order the runner asks for them, so that a
  loop the runner abandons (L-7) is known and closed at the end like the others.
  The task factory logs only tasks of the scenario, by label.

Steps that the running interpreter cannot execute (``TaskGroup``,
``asyncio.timeout`` and ``uncancel`` need Python 3.11, an eager task factory
3.12) make ``execute`` raise ``UnsupportedScenario`` before anything runs: a
worker replies with that error.

Observation shape::

    {"calls": [{"call": "run", "path": "$.calls[0]",
                "outcome": {"returned": 3} | {"raised": <exception summary>},
                "log": ["r0.t0 start loop0 debug=False", "r0.t0 spawn r0.t1", ...],
                "reports": [<exception-handler call>, ...],
                "tasks": {"r0.t0": "returned 3", "r0.t1": "pending", ...},
                "state": {"thread_loop": "loop0" | "none" | "other", "sigint": "default" | ...,
                          "threads": false  # closing calls only}}, ...],
     "end": {"loops": {"loop0": "closed" | "open" | "running"},
             "log": [...], "reports": [...], "warnings": [...]},
     "hints": {"pending_at_main_exit": [...]}}   # tasks a close() may cancel: _note_possible_leftovers

This module is on the execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import _thread
import asyncio
import builtins
import contextvars
import dataclasses
import gc
import re
import signal
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from conformance.outside_sigint import OutsideSigint
from conformance.scenario import (
    CONTEXT_VARS,
    LOOP_FAILURE_ORIGIN,
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
    Raise,
    Return,
    Run,
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
    TaskSpec,
    Timeout,
    Uncancel,
    Value,
    With,
    Yield,
    nested_steps,
)
from conformance.targets import Target

try:
    # signal.getsignal converts every answer to an enum member when it can, trying (and failing,
    # with an exception) for every function handler: a tenth of a scenario's own cost, since the
    # handler is read after every call. The C function answers the same without that.
    from _signal import getsignal as _getsignal
except ImportError:  # an interpreter without the C module
    _getsignal = signal.getsignal

#: How long the loop thread waits for an (instant) executor job before giving up.
EXECUTOR_JOB_LIMIT_S = 10.0
#: How long exiting threads get to finish before "threads left after close" is read.
THREAD_GRACE_S = 0.2
#: A deadline that has passed by the time the wait starts, and one that never comes.
DEADLINE_S = {"expired": 0, "never": 86400}
#: The name of the thread that drives the runner in scenarios with ``thread: "other"``.
RUNNER_THREAD_NAME = "scenario-runner"

_UNSET = "<unset>"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")
#: "coroutine 'BaseEventLoop.shutdown_asyncgens'" (asyncio) and "'Loop.shutdown_asyncgens'"
#: (uvloop) name the same method: the class owning it is the implementation's, not behaviour.
_COROUTINE_OWNER = re.compile(r"coroutine '(?:[\w<>]+\.)+(\w+)'")
_OBJECT_REPR = re.compile(r"<[^<>]*>")
_AGEN_LINE = re.compile(r"r\d+\.g\d+ ")

_EXCEPTIONS: Dict[str, Callable[..., BaseException]] = {
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "CancelledError": asyncio.CancelledError,
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
}


class UnsupportedScenario(Exception):
    """The running interpreter lacks something the scenario uses; the message names the step."""


def execute(scenario: Scenario, target: Target, cancel_order: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run ``scenario`` under ``target`` in this process; return the observation.

    ``cancel_order`` (task labels) is passed to a reference target as the
    order in which to cancel leftover tasks. Without it, a reference target is
    given the order in which the tasks were created, so that the reference is
    deterministic on its own. Raises ``UnsupportedScenario`` (before running
    anything) if a step needs what this interpreter does not have.
    """
    check_supported(scenario)
    session = _Session(scenario, target, cancel_order)
    # A fresh context keeps the driver-level context variables of one scenario
    # from leaking into the next; a fresh policy resets the thread's event loop.
    return contextvars.Context().run(session.execute)


def _missing_step_kinds() -> Dict[str, str]:
    """Step kinds this interpreter's asyncio cannot run, and what each needs (none on 3.11 and later)."""
    return {
        kind: needed
        for kind, needed, present in (
            ("taskgroup", "asyncio.TaskGroup", hasattr(asyncio, "TaskGroup")),
            ("timeout", "asyncio.timeout", hasattr(asyncio, "timeout")),
            ("uncancel", "Task.uncancel()", hasattr(asyncio.Task, "uncancel")),
        )
        if not present
    }


def check_supported(scenario: Scenario) -> None:
    """Refuse a scenario with a step this interpreter cannot run (TaskGroup, timeout and uncancel need 3.11).

    An eager task factory needs 3.12. Where every step kind is available the
    steps are not walked at all: the walk costs a tenth of a small scenario's run.
    """
    version = ".".join(map(str, sys.version_info[:3]))
    if scenario.runner.task_factory == "eager" and not hasattr(asyncio, "eager_task_factory"):
        raise UnsupportedScenario(f"$.runner.task_factory: 'eager' needs eager tasks, which Python {version} lacks")
    missing = _missing_step_kinds()
    if not missing:
        return
    for path, step in _steps_with_paths(scenario.calls, "$.calls"):
        kind = step.how if isinstance(step, Group) else step.op
        needed = missing.get(kind)
        if needed is not None:
            raise UnsupportedScenario(f"{path}: {kind!r} needs {needed}, which Python {version} lacks")


def _steps_with_paths(calls: Tuple[Call, ...], path: str) -> Iterator[Tuple[str, Step]]:
    """Every step of every run call, with its path in the scenario document."""
    for index, call in enumerate(calls):
        call_path = f"{path}[{index}]"
        if isinstance(call, With):
            yield from _steps_with_paths(call.calls, f"{call_path}.calls")
        elif isinstance(call, Run):
            for number, task in enumerate(call.main.tasks):
                task_path = f"{call_path}.main.tasks[{number}]"
                for section, steps in (
                    ("steps", task.steps),
                    ("on_cancel.steps", task.on_cancel.steps),
                    ("finally", task.finally_steps),
                ):
                    yield from _list_with_paths(steps, f"{task_path}.{section}")


def _list_with_paths(steps: Tuple[Step, ...], path: str) -> Iterator[Tuple[str, Step]]:
    for position, step in enumerate(steps):
        step_path = f"{path}[{position}]"
        yield step_path, step
        inner = "finally" if isinstance(step, AsyncGen) else "steps"
        yield from _list_with_paths(nested_steps(step), f"{step_path}.{inner}")


def normalize_text(text: str) -> str:
    """Drop what is not behaviour from a message: addresses and object reprs."""
    text = text.split("\n", 1)[0]
    text = _ADDRESS.sub("", text)
    text = _COROUTINE_OWNER.sub(r"coroutine '\1'", text)
    previous = None
    while previous != text:  # innermost reprs first, so nested ones collapse into one
        previous, text = text, _OBJECT_REPR.sub("\x00", text)
    return text.replace("\x00", "<…>")


def describe_exception(exc: BaseException, depth: int = 0) -> Dict[str, Any]:
    """Type, args, origin, and one level of ``__cause__`` / ``__context__``.

    ``origin`` is the scenario step that raised this very object, so that a
    runner re-raising the user's exception and a runner raising a copy or a new
    one of the same type are told apart (R-12).
    """
    summary: Dict[str, Any] = {"type": type(exc).__name__, "args": [_normalize_arg(a) for a in exc.args]}
    origin = getattr(exc, "_conformance_origin", None)
    if origin is not None:
        summary["origin"] = origin
    if depth == 0:
        for link in ("__cause__", "__context__"):
            linked = getattr(exc, link)
            if linked is not None:
                summary[link.strip("_")] = describe_exception(linked, depth + 1)
        nested = getattr(exc, "exceptions", None)
        if isinstance(nested, tuple):
            summary["exceptions"] = [describe_exception(e, depth + 1) for e in nested]
    return summary


def format_exception(exc: BaseException) -> str:
    """One-line form for the log: ``ValueError('x')``; a group lists its exceptions the same way."""
    if _is_exception_group(exc):
        inner = ", ".join(format_exception(e) for e in exc.exceptions)  # type: ignore[attr-defined]
        return f"{type(exc).__name__}({_normalize_arg(exc.message)!r}, [{inner}])"  # type: ignore[attr-defined]
    args = ", ".join(repr(_normalize_arg(a)) for a in exc.args)
    return f"{type(exc).__name__}({args})"


def _is_exception_group(exc: BaseException) -> bool:
    group_type = getattr(builtins, "BaseExceptionGroup", None)  # 3.11+
    return group_type is not None and isinstance(exc, group_type)


def _normalize_arg(arg: Any) -> Any:
    if arg is None or isinstance(arg, (bool, int)):
        return arg
    if isinstance(arg, str):
        return normalize_text(arg)
    return normalize_text(repr(arg))


class _Session:
    """One execution of one scenario. Holds every object the program creates."""

    def __init__(self, scenario: Scenario, target: Target, cancel_order: Optional[Sequence[str]]) -> None:
        self.scenario = scenario
        self.target = target
        self.cancel_order = cancel_order
        self.variables = {name: contextvars.ContextVar(f"scenario_{name}") for name in CONTEXT_VARS}
        self.tasks: Dict[str, asyncio.Task] = {}
        self.labels: Dict[int, str] = {}  # id(task) -> label, valid because we keep every task alive
        self.loops: List[Any] = []
        self.keep_alive: List[Any] = []  # coroutines, async generators, runners: released only at the end
        self.agen_count = 0
        self.executor_count = 0
        self.records: List[Dict[str, Any]] = []
        self.current: Dict[str, Any] = {}
        self.hints: Dict[str, List[str]] = {"pending_at_main_exit": []}
        self.run_labels = _run_labels(scenario)
        self.runner: Any = None
        self.outside = OutsideSigint()
        self.sigint_waits: List[asyncio.Future] = []  # futures of sigint_wait steps waiting now
        self.coroutine_labels: Dict[int, str] = {}  # id(coroutine) -> its task's label, for the task factory
        self.loops_asked = 0  # loops the runner asked the scenario's hooks for (loop_fails: the first)

    # ------------------------------------------------------------ driving

    def execute(self) -> Dict[str, Any]:
        asyncio.set_event_loop_policy(None)
        self._install_loop_hooks()
        self.threads_before = set(threading.enumerate())
        gc_was_enabled = gc.isenabled()
        # Garbage of an earlier scenario must not be finalized during this one.
        gc.collect()
        gc.disable()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._install_sigint_handler()
                if self.scenario.runner.thread == "other":
                    self._drive_in_other_thread()
                else:
                    self._drive()
                end = self._end(caught)
        finally:
            self.outside.close()
            # Reports that come later (e.g. from the next automatic collection)
            # belong to no observation; the next scenario's first collection
            # flushes them before it starts recording.
            self.current = {"log": [], "reports": []}
            self._restore_process_state()
            if gc_was_enabled:
                gc.enable()
        return {"calls": self.records, "end": end, "hints": self.hints}

    def _install_loop_hooks(self) -> None:
        """Route the runner's loops through ``_hooked_loop`` when the scenario configures them.

        With a loop factory, the target's factory is wrapped; without one, the
        runner makes its loops through the event-loop policy (L-3), so a policy
        making them is installed (``_restore_process_state`` removes it).
        """
        config = self.scenario.runner
        if config.loop_fails == "never" and config.task_factory == "none":
            return
        if config.loop_factory:
            factory = self.target.loop_factory
            self.target = dataclasses.replace(self.target, loop_factory=lambda: self._hooked_loop(factory))
        else:
            asyncio.set_event_loop_policy(_HookedPolicy(self._hooked_loop))

    def _hooked_loop(self, make: Callable[[], Any]) -> Any:
        """A loop made by ``make`` for a runner: the first one fails as ``loop_fails`` says (L-7).

        ``create``: the loop is not made and the runner gets the exception;
        ``set_debug``: the loop is made, and its ``set_debug`` raises when the
        runner calls it. Every loop gets the ``task_factory``.
        """
        config = self.scenario.runner
        first = self.loops_asked == 0
        self.loops_asked += 1
        if first and config.loop_fails == "create":
            raise _from_config(RuntimeError("loop creation failed"))
        loop = make()
        self._loop_label(loop)
        if first and config.loop_fails == "set_debug":
            loop.set_debug = _failing_set_debug
        if config.task_factory != "none":
            loop.set_task_factory(self._task_factory)
        return loop

    def _task_factory(self, loop: Any, coro: Any, **kwargs: Any) -> Any:
        """The task factory of ``task_factory`` custom, eager and legacy (R-5, R-7, R-10).

        It logs each scenario task it makes: whether it was handed a context
        and which SIGINT handler is installed as it is made. ``eager`` starts
        tasks eagerly (only a running loop does); ``legacy`` makes the main
        task of a Task class without ``uncancel()``.
        """
        how = self.scenario.runner.task_factory
        label = self.coroutine_labels.get(id(coro))
        if label is not None:
            context = kwargs.get("context") is not None
            self.log(label, f"task_factory context={context} sigint={self._sigint_state()}")
        if how == "eager":
            kwargs["eager_start"] = True
        main = label is not None and label.endswith(".t0")
        task_class = _TaskWithoutUncancel if how == "legacy" and main else asyncio.Task
        return task_class(coro, loop=loop, **kwargs)

    def _install_sigint_handler(self) -> None:
        """The SIGINT handler the program starts with (``sigint_handler``), before any runner exists."""
        handler = self.scenario.runner.sigint_handler
        if handler == "custom":
            signal.signal(signal.SIGINT, self._custom_sigint_handler)
        elif handler == "ignored":
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _custom_sigint_handler(self, signum: int, frame: Any) -> None:
        """A user's own Ctrl-C handler: it logs, and releases the ``sigint_wait`` steps (it cancels nothing).

        A runner must leave it alone (R-6). Releasing goes through
        ``call_soon_threadsafe``, which also wakes a loop blocked in ``select()``.
        """
        self.current["log"].append("sigint custom handler")
        for release in self.sigint_waits:
            loop = release.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, release, "custom handler")

    def _drive_in_other_thread(self) -> None:
        """Make the program's calls from a thread that is not the main one (I-4: no SIGINT handling there).

        The thread starts in a fresh context, as the main thread's program does.
        """
        failures: List[BaseException] = []

        def drive() -> None:
            try:
                contextvars.Context().run(self._drive)
            except BaseException as exc:  # reported in the main thread
                failures.append(exc)

        thread = threading.Thread(target=drive, name=RUNNER_THREAD_NAME)
        self.threads_before.add(thread)
        thread.start()
        thread.join()
        if failures:
            raise failures[0]

    def _drive(self) -> None:
        config = self.scenario.runner
        if config.mode == "run":
            (call,) = self.scenario.calls
            run = self.target.run_function(config.debug, config.loop_factory, **self._runner_options())
            self._record(call, "$.calls[0]", lambda: run(self._main_object(call, "$.calls[0]")))
            return
        self.runner = self.target.make_runner(config.debug, config.loop_factory, **self._runner_options())
        if config.mode == "with":
            self._with_block(self.scenario.calls, "$")
        else:
            self._calls(self.scenario.calls, "$.calls")

    def _runner_options(self) -> Dict[str, Any]:
        if self.target.spec not in ("reference", "reference.run"):
            return {}
        order = list(self.cancel_order) if self.cancel_order is not None else None
        return {"cancel_order": lambda tasks: self._order_tasks(tasks, order)}

    def _order_tasks(self, tasks: Sequence[asyncio.Task], order: Optional[List[str]]) -> List[asyncio.Task]:
        """The reference's cancellation order: the given labels first, then creation order."""
        created = list(self.tasks)
        rank = {label: i for i, label in enumerate(order or [])}

        def key(task: asyncio.Task) -> Tuple[int, int]:
            label = self.labels.get(id(task))
            if label is None:
                return (2, 0)
            return (0, rank[label]) if label in rank else (1, created.index(label))

        return sorted(tasks, key=key)

    def _with_block(self, calls: Tuple[Call, ...], path: str) -> None:
        entered = self._record_named("enter", f"{path}.enter", self.runner.__enter__)
        if entered:
            self._calls(calls, f"{path}.calls")
            self._record_named("exit", f"{path}.exit", lambda: self.runner.__exit__(None, None, None))

    def _calls(self, calls: Tuple[Call, ...], path: str) -> None:
        for index, call in enumerate(calls):
            call_path = f"{path}[{index}]"
            if isinstance(call, With):
                self._with_block(call.calls, call_path)
            else:
                self._record(call, call_path, self._action(call, call_path))

    def _action(self, call: Call, path: str) -> Callable[[], Any]:
        runner = self.runner
        if isinstance(call, Run):
            context = {
                "runner": None,
                "fresh": contextvars.Context(),
                "copy": contextvars.copy_context(),
            }[call.context]
            kwargs = {} if context is None else {"context": context}
            return lambda: runner.run(self._main_object(call, path), **kwargs)
        if isinstance(call, RunObject):
            return lambda: runner.run(self._main_object(call, path))
        if isinstance(call, GetLoop):
            return runner.get_loop
        if isinstance(call, Close):
            return runner.close
        if isinstance(call, SetVarCall):
            return lambda: _set(self.variables[call.var], call.value)
        if isinstance(call, GetVarCall):
            return lambda: self.variables[call.var].get(_UNSET)
        if isinstance(call, SigintCall):
            return lambda: signal.raise_signal(signal.SIGINT)
        if isinstance(call, ConstructPositional):
            return self._construct_positionally
        if isinstance(call, CloseLoop):
            return self._close_loop
        raise TypeError(f"unknown call {call!r}")

    def _close_loop(self) -> None:
        """``runner.get_loop().close()``; the loop is labelled as the program sees it (R-15)."""
        loop = self.runner.get_loop()
        self._loop_label(loop)
        loop.close()

    def _construct_positionally(self) -> Any:
        """``type(runner)(debug)``: the runner's class given an argument positionally (I-1 says TypeError).

        A runner made anyway is kept, as everything the program makes is, until the end.
        """
        made = type(self.runner)(self.scenario.runner.debug)
        self.keep_alive.append(made)
        return made

    def _main_object(self, call: Call, path: str) -> Any:
        """What ``run`` is handed: the main task's coroutine, or a non-coroutine."""
        if isinstance(call, Run):
            label = f"{self.run_labels[path]}.t0"
            coroutine = self._task(label, call.main.tasks, 0)
            self.keep_alive.append(coroutine)
            self.coroutine_labels[id(coroutine)] = label
            return coroutine
        assert isinstance(call, RunObject)
        if call.object == "int":
            return 1
        if call.object == "none":
            return None
        if call.object == "lambda":
            return lambda: None
        if call.object == "generator":
            generator = (x for x in ())
            self.keep_alive.append(generator)
            return generator
        if call.object == "awaited":
            awaited = _awaited_coroutine()
            self.keep_alive.append(awaited)
            return awaited
        return _Awaitable()

    def _record(self, call: Call, path: str, action: Callable[[], Any]) -> bool:
        return self._record_named(type(call).call, path, action)

    def _record_named(self, name: str, path: str, action: Callable[[], Any]) -> bool:
        """Make one call, record its outcome and the state after it; True if it returned."""
        record: Dict[str, Any] = {"call": name, "path": path, "log": [], "reports": []}
        self.records.append(record)
        self.current = record
        if name in ("close", "exit"):
            self._note_possible_leftovers()
        try:
            self.outside.resume()
            try:
                value = action()
            finally:
                self.outside.pause()
        except BaseException as exc:
            record["outcome"] = {"raised": describe_exception(exc)}
            returned = False
        else:
            record["outcome"] = {"returned": self._value(value)}
            returned = True
        record["reports"].sort(key=repr)
        record["log"] = _agens_unordered(record["log"])
        record["tasks"] = self._task_states()
        record["state"] = self._process_state()
        if name in ("close", "exit") or self.scenario.runner.mode == "run":
            record["state"]["threads"] = self._threads_left()
        return returned

    # ------------------------------------------------------------- tasks

    def log(self, label: str, event: str) -> None:
        self.current["log"].append(f"{label} {event}")

    async def _task(self, label: str, specs: Tuple[TaskSpec, ...], index: int) -> Value:
        """The coroutine of one task spec; logs its start and how it ended."""
        if index == 0:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(self._on_loop_exception)
            current = asyncio.current_task()
            if current is not None:
                self._register(label, current)
            self.log(label, f"start {self._loop_label(loop)} debug={loop.get_debug()}")
        else:
            self.log(label, "start")
        try:
            value = await self._task_body(label, specs, specs[index])
        except BaseException as exc:
            self.log(label, f"exit raised {format_exception(exc)}")
            raise
        else:
            self.log(label, f"exit returned {value!r}")
            return value
        finally:
            if index == 0:
                self._note_possible_leftovers(exclude=label)

    async def _task_body(self, label: str, specs: Tuple[TaskSpec, ...], spec: TaskSpec) -> Value:
        """Body, cancellation handling and ``finally``, as a programmer would write them."""
        try:
            try:
                returned, value = await self._steps(label, specs, spec.steps, f"{label}.steps")
            except asyncio.CancelledError as exc:
                if self.scenario.runner.mode == "run":
                    # The run function closes too: if this is its shutdown, nothing it
                    # must cancel is done yet (see _note_possible_leftovers).
                    self._note_possible_leftovers()
                self.log(label, f"cancelled {format_exception(exc)}")
                action = spec.on_cancel.action
                if action == "swallow":
                    return spec.on_cancel.value
                if action == "cleanup":
                    returned, value = await self._steps(label, specs, spec.on_cancel.steps, f"{label}.cleanup")
                    if returned:
                        return value
                raise
            return value if returned else None
        finally:
            if spec.finally_steps:
                self.log(label, "finally")
                returned, value = await self._steps(label, specs, spec.finally_steps, f"{label}.finally")
                if returned:
                    return value  # noqa: B012 - a `return` in `finally` is a scenario step, on purpose

    async def _steps(
        self, label: str, specs: Tuple[TaskSpec, ...], steps: Tuple[Step, ...], path: str
    ) -> Tuple[bool, Value]:
        """Run a list of steps; ``(True, value)`` when a ``return`` step ended it."""
        run_label = label.rsplit(".", 1)[0]
        for position, step in enumerate(steps):
            if isinstance(step, Yield):
                await asyncio.sleep(0)
                self.log(label, "yield")
            elif isinstance(step, Spawn):
                child = f"{run_label}.t{step.task}"
                self.log(label, f"spawn {child}")
                self._spawn(child, specs, step.task, asyncio.ensure_future)
            elif isinstance(step, Await):
                await self._await(label, f"{run_label}.t{step.task}", step.catch)
            elif isinstance(step, Cancel):
                self._cancel(label, f"{run_label}.t{step.task}", step.msg)
            elif isinstance(step, Raise):
                exc = _EXCEPTIONS[step.exc](*(() if step.arg is None else (step.arg,)))
                exc._conformance_origin = f"{path}[{position}]"  # type: ignore[attr-defined]
                self.log(label, f"raise {format_exception(exc)}")
                raise exc
            elif isinstance(step, Return):
                self.log(label, f"return {step.value!r}")
                return True, step.value
            elif isinstance(step, Sigint):
                self.log(label, "sigint")
                signal.raise_signal(signal.SIGINT)
            elif isinstance(step, SetVar):
                self.variables[step.var].set(step.value)
                self.log(label, f"set {step.var}={step.value!r}")
            elif isinstance(step, GetVar):
                self.log(label, f"get {step.var} -> {self.variables[step.var].get(_UNSET)!r}")
            elif isinstance(step, AsyncGen):
                await self._start_agen(label, specs, step, f"{path}[{position}].finally")
            elif isinstance(step, Executor):
                await self._executor(label, step.wait)
            elif isinstance(step, Group):
                returned, value = await self._group(label, specs, step, f"{path}[{position}].steps")
                if returned:
                    return True, value
            elif isinstance(step, Timeout):
                returned, value = await self._timeout(label, specs, step, f"{path}[{position}].steps")
                if returned:
                    return True, value
            elif isinstance(step, Uncancel):
                task = asyncio.current_task()
                self.log(label, f"uncancel -> {task.uncancel()}")  # type: ignore[union-attr]
            elif isinstance(step, StopLoop):
                self.log(label, "stop_loop")
                asyncio.get_running_loop().stop()
            elif isinstance(step, NestedRun):
                self._nested_run(label, step.how)
            elif isinstance(step, SigintWait):
                await self._sigint_wait(label)
            elif isinstance(step, CloseRunner):
                self._close_runner(label)
            elif isinstance(step, InterruptMain):
                self.log(label, "interrupt_main")
                _thread.interrupt_main()
            elif isinstance(step, SetSigintHandler):
                self.log(label, "set_sigint_handler")
                signal.signal(signal.SIGINT, self._custom_sigint_handler)
            else:
                raise TypeError(f"unknown step {step!r}")
        return False, None

    def _spawn(
        self, child: str, specs: Tuple[TaskSpec, ...], index: int, create: Callable[[Any], asyncio.Task]
    ) -> asyncio.Task:
        """Create task ``index`` of the graph with ``create`` (a loop's or a TaskGroup's) and label it."""
        coroutine = self._task(child, specs, index)
        self.keep_alive.append(coroutine)
        self.coroutine_labels[id(coroutine)] = child
        task = create(coroutine)
        self._register(child, task)
        return task

    async def _group(self, label: str, specs: Tuple[TaskSpec, ...], step: Group, path: str) -> Tuple[bool, Value]:
        """Spawn the group's children and wait for them as ``step.how`` says; log the outcome."""
        run_label = label.rsplit(".", 1)[0]
        children = [f"{run_label}.t{index}" for index in step.tasks]
        name = group_name(step)
        self.log(label, f"{name} [{', '.join(children)}]")
        try:
            if step.how == "taskgroup":
                async with _task_group() as group:
                    for child, index in zip(children, step.tasks):
                        self._spawn(child, specs, index, group.create_task)
                    returned, value = await self._steps(label, specs, step.steps, path)
                return returned, value
            tasks = [
                self._spawn(child, specs, index, asyncio.ensure_future) for child, index in zip(children, step.tasks)
            ]
            if step.how == "gather":
                results = await asyncio.gather(*tasks, return_exceptions=step.return_exceptions)
                outcome = "[" + ", ".join(_result_text(result) for result in results) + "]"
            elif step.how == "wait":
                done, _ = await asyncio.wait(tasks, return_when=step.return_when.upper())
                # Sets: by label, in the group's own order, never in set order.
                finished = [child for child, task in zip(children, tasks) if task in done]
                unfinished = [child for child, task in zip(children, tasks) if task not in done]
                outcome = f"done [{', '.join(finished)}] pending [{', '.join(unfinished)}]"
            elif step.how == "shield":
                outcome = repr(await asyncio.shield(tasks[0]))
            else:
                outcome = repr(await asyncio.wait_for(tasks[0], DEADLINE_S[step.deadline]))
        except Exception as exc:
            self.log(label, f"{name} raised {format_exception(exc)}")
            if not step.catch:
                raise
            return False, None
        except BaseException as exc:
            self.log(label, f"{name} raised {format_exception(exc)}")
            raise
        self.log(label, f"{name} -> {outcome}")
        return False, None

    async def _timeout(self, label: str, specs: Tuple[TaskSpec, ...], step: Timeout, path: str) -> Tuple[bool, Value]:
        """``async with asyncio.timeout(...)`` around the nested steps; logs only what leaves it raising."""
        name = f"timeout({step.deadline})"
        self.log(label, name)
        try:
            async with asyncio.timeout(DEADLINE_S[step.deadline]):  # type: ignore[attr-defined]
                return await self._steps(label, specs, step.steps, path)
        except Exception as exc:
            self.log(label, f"{name} raised {format_exception(exc)}")
            if not step.catch:
                raise
            return False, None
        except BaseException as exc:
            self.log(label, f"{name} raised {format_exception(exc)}")
            raise

    def _nested_run(self, label: str, how: str) -> None:
        """Call ``run`` inside the running loop (R-2, A-2) with a coroutine that must never start."""
        coroutine = _nested_main()
        self.keep_alive.append(coroutine)
        self.log(label, f"nested_run {how}")
        if how == "runner":
            run = self.runner.run
        else:
            config = self.scenario.runner
            run = self.target.run_function(config.debug, config.loop_factory, **self._runner_options())
        try:
            value = run(coroutine)
        except Exception as exc:
            self.log(label, f"nested_run {how} raised {format_exception(exc)}")
        else:
            self.log(label, f"nested_run {how} -> {self._value(value)!r}")

    def _close_runner(self, label: str) -> None:
        """``runner.close()`` from inside the runner's running loop (C-6); logs what it raised.

        Its leftover cancellation reaches every task not done yet, this one
        included, in an order CPython leaves open: they are noted as possible
        leftovers first (see ``_note_possible_leftovers``).
        """
        self._note_possible_leftovers()
        self.log(label, "close_runner")
        try:
            value = self.runner.close()
        except Exception as exc:
            self.log(label, f"close_runner raised {format_exception(exc)}")
        else:
            self.log(label, f"close_runner -> {self._value(value)!r}")

    async def _sigint_wait(self, label: str) -> None:
        """Wait until a SIGINT from another process, sent while the loop is idle, releases this task.

        The runner's handler releases it by cancelling the main task (this is
        always the main task), a custom handler by resolving the future, the
        default one by raising ``KeyboardInterrupt`` in the loop. Under
        ``SIG_IGN`` nothing could, so the step is skipped.
        """
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            self.log(label, "sigint_wait skipped: SIGINT is ignored")
            return
        if not self.outside.start():
            self.log(label, "sigint_wait skipped: the loop cannot be watched from outside here")
            return
        release = asyncio.get_running_loop().create_future()
        self.sigint_waits.append(release)
        self.log(label, "sigint_wait")
        self.outside.arm()
        try:
            await release
        finally:
            self.outside.disarm()
            self.sigint_waits.remove(release)
        self.log(label, "sigint_wait released")

    def _note_possible_leftovers(self, exclude: str = "") -> None:
        """Record the tasks not done now: a runner's ``close()`` may be about to cancel them (hints).

        The comparison tries the orders CPython allows for the tasks ``close()``
        cancels (K-2); it needs to know which those may be. Noted when the main
        task exits, when a closing call starts and, in mode ``run`` (whose one
        call also closes), when a task sees a cancellation: at the first one
        that ``close()`` delivers none of the tasks it cancels has finished.
        A run can end with the main task pending (a ``KeyboardInterrupt`` from
        a child, ``stop_loop``), so the main task's exit is not enough.
        """
        pending = self.hints["pending_at_main_exit"]
        pending += [name for name, task in self.tasks.items() if not task.done() and name not in pending + [exclude]]

    def _register(self, label: str, task: asyncio.Task) -> None:
        self.tasks[label] = task
        self.labels[id(task)] = label

    async def _await(self, label: str, child: str, catch: bool) -> None:
        task = self.tasks.get(child)
        if task is None:
            self.log(label, f"await {child} skipped: not spawned")
            return
        try:
            value = await task
        except Exception as exc:
            self.log(label, f"await {child} raised {format_exception(exc)}")
            if not catch:
                raise
        except BaseException as exc:
            self.log(label, f"await {child} raised {format_exception(exc)}")
            raise
        else:
            self.log(label, f"await {child} -> {value!r}")

    def _cancel(self, label: str, victim: str, msg: Optional[str]) -> None:
        task = self.tasks.get(victim)
        if task is None:
            self.log(label, f"cancel {victim} skipped: not spawned")
            return
        accepted = task.cancel() if msg is None else task.cancel(msg)
        self.log(label, f"cancel {victim} -> {accepted}")

    async def _start_agen(self, label: str, specs: Tuple[TaskSpec, ...], step: AsyncGen, path: str) -> None:
        name = f"{label.split('.')[0]}.g{self.agen_count}"
        self.agen_count += 1
        agen = self._agen(name, specs, step.finally_steps, path)
        self.keep_alive.append(agen)
        await agen.__anext__()
        self.log(label, f"agen {name} started")

    async def _agen(self, name: str, specs: Tuple[TaskSpec, ...], finally_steps: Tuple[Step, ...], path: str):  # type: ignore[no-untyped-def]
        """An async generator left suspended at its first ``yield``, with a ``finally`` (running ``finally_steps``)."""
        try:
            yield 1
            yield 2
        except BaseException as exc:
            self.log(name, f"closed by {type(exc).__name__}")
            raise
        finally:
            self.log(name, "finally")
            await self._steps(name, specs, finally_steps, path)

    async def _executor(self, label: str, wait: bool) -> None:
        """Submit an instant job to the default executor without racing the loop.

        The loop thread blocks until the job has run. An awaited job resolves
        our own future with ``call_soon_threadsafe`` before it signals, so the
        resolution sits at a fixed place in the ready queue. The future that
        ``run_in_executor`` returns is left alone: when its own completion
        lands is a thread race, but nothing waits on it.
        """
        loop = asyncio.get_running_loop()
        name = f"{label.split('.')[0]}.e{self.executor_count}"
        self.executor_count += 1
        ran = threading.Event()
        result = loop.create_future() if wait else None

        def job() -> str:
            if result is not None:
                loop.call_soon_threadsafe(_resolve, result, name)
            ran.set()
            return name

        self.keep_alive.append(loop.run_in_executor(None, job))
        if not ran.wait(EXECUTOR_JOB_LIMIT_S):
            raise RuntimeError(f"executor job {name} did not run within {EXECUTOR_JOB_LIMIT_S} s")
        self.log(label, f"executor {name} ran")
        if result is not None:
            value = await result
            self.log(label, f"executor {value} awaited")

    # ------------------------------------------------------- observation

    def _on_loop_exception(self, loop: Any, context: Dict[str, Any]) -> None:
        """The loop's exception handler: record the call instead of logging it."""
        exc = context.get("exception")
        subject = context.get("task") or context.get("future")
        report = {
            "message": normalize_text(str(context.get("message", ""))),
            "exception": None if exc is None else format_exception(exc),
            "task": None if subject is None else self.labels.get(id(subject), "other"),
        }
        self.current["reports"].append(report)

    def _loop_label(self, loop: Any) -> str:
        for index, seen in enumerate(self.loops):
            if seen is loop:
                return f"loop{index}"
        self.loops.append(loop)
        return f"loop{len(self.loops) - 1}"

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, asyncio.AbstractEventLoop):
            return self._loop_label(value)
        if value is self.runner:
            return "<runner>"
        return f"<{type(value).__name__}>"

    def _task_states(self) -> Dict[str, str]:
        return {label: _task_state(task) for label, task in self.tasks.items()}

    def _process_state(self) -> Dict[str, Any]:
        """What a runner must leave behind in the process after each call."""
        policy = asyncio.get_event_loop_policy()
        local = getattr(policy, "_local", None)
        thread_loop = getattr(local, "_loop", None)
        if thread_loop is None:
            loop_state = "none"
        elif any(thread_loop is seen for seen in self.loops):
            loop_state = self._loop_label(thread_loop)
        else:
            loop_state = "other"
        return {"thread_loop": loop_state, "sigint": self._sigint_state()}

    def _sigint_state(self) -> str:
        """The SIGINT handler installed now: ``default``, ``custom`` (the program's own), ``SIG_IGN``, ``other``..."""
        handler = _getsignal(signal.SIGINT)
        if handler is signal.default_int_handler:
            return "default"
        if handler == self._custom_sigint_handler:
            return "custom"
        if handler in (signal.SIG_IGN, signal.SIG_DFL):
            return signal.Handlers(handler).name
        return "other"

    def _threads_left(self) -> bool:
        """Whether threads this scenario started are still alive after a close.

        A loop that closes without joining its executor (``loop.close()`` calls
        ``shutdown(wait=False)``, as when ``close()`` aborts, C-4) leaves its
        workers exiting on their own time. A short grace join makes "exiting"
        and "exited" look the same, so only threads that stay alive count.
        """
        return bool(self._join_new_threads())

    def _join_new_threads(self) -> List[threading.Thread]:
        """Give threads this scenario started a short grace to end; return those still alive."""
        deadline = time.monotonic() + THREAD_GRACE_S
        new = [t for t in threading.enumerate() if t not in self.threads_before]
        for thread in new:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in new if t.is_alive()]

    def _end(self, caught: List[warnings.WarningMessage]) -> Dict[str, Any]:
        """Release everything the program made, collect it, and record the aftermath.

        Loops a runner left open are closed here, inside the recording, so
        that what their closing frees is observed the same way every time.
        """
        end: Dict[str, Any] = {"log": [], "reports": []}
        self.current = end
        end["loops"] = {f"loop{i}": _loop_state(loop) for i, loop in enumerate(self.loops)}
        if _getsignal(signal.SIGINT) is not signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a leftover handler holds its main task
        for loop in self.loops:
            if not loop.is_closed() and not loop.is_running():
                loop.close()
        # An executor worker that has just run a job may still hold it, and
        # through it a task: let exiting workers finish before collecting.
        self._join_new_threads()
        self.loops.clear()
        self.tasks.clear()
        self.keep_alive.clear()
        self.runner = None
        # A second pass collects what finalizers of the first released; when
        # the first found nothing, no finalizer ran and there is nothing more.
        if gc.collect():
            gc.collect()
        # Which of several unreachable objects the collector finalizes first is
        # not behaviour: keep each label's own order, nothing across labels.
        end["log"].sort(key=lambda line: line.split(" ", 1)[0])
        end["reports"].sort(key=repr)
        end["warnings"] = sorted(f"{w.category.__name__}: {normalize_text(str(w.message))}" for w in caught)
        return end

    def _restore_process_state(self) -> None:
        """Undo what the runner left behind (it has been recorded) for the next scenario."""
        if _getsignal(signal.SIGINT) is not signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        for loop in self.loops:
            if not loop.is_closed() and not loop.is_running():
                loop.close()
        self.loops.clear()
        asyncio.set_event_loop_policy(None)


def _run_labels(scenario: Scenario) -> Dict[str, str]:
    """``r0``, ``r1``, ... for the run calls, keyed by the path the driver gives each call.

    Keyed by position, not identity: a scenario built in Python may hold the
    same ``Run`` object twice, and each call still is its own run.
    """
    labels: Dict[str, str] = {}

    def walk(calls: Tuple[Call, ...], path: str) -> None:
        for index, call in enumerate(calls):
            call_path = f"{path}[{index}]"
            if isinstance(call, With):
                walk(call.calls, f"{call_path}.calls")
            elif isinstance(call, Run):
                labels[call_path] = f"r{len(labels)}"

    walk(scenario.calls, "$.calls")
    return labels


def _agens_unordered(log: List[str]) -> List[str]:
    """Sort each run of consecutive async-generator lines by generator label.

    ``shutdown_asyncgens`` closes the loop's generators in the order of a weak
    set, which CPython leaves unspecified. Our generators finalize without
    awaiting, so each one's lines are contiguous: sorting a run by label
    (stably) keeps every generator's own order and drops only the order among
    them.
    """
    out: List[str] = []
    run: List[str] = []
    for line in log + [""]:
        if _AGEN_LINE.match(line):
            run.append(line)
            continue
        out.extend(sorted(run, key=lambda entry: entry.split(" ", 1)[0]))
        run = []
        if line:
            out.append(line)
    return out


def group_name(step: Group) -> str:
    """How a group step names itself in the log: its kind and the option that shapes its outcome."""
    if step.how == "gather":
        return "gather(return_exceptions)" if step.return_exceptions else "gather"
    if step.how == "wait":
        return f"wait({step.return_when})"
    if step.how == "wait_for":
        return f"wait_for({step.deadline})"
    return step.how


def _result_text(result: Any) -> str:
    """One result of ``gather``: an exception (``return_exceptions``) in log form, a value as its repr."""
    return format_exception(result) if isinstance(result, BaseException) else repr(result)


class _CreationOrderedTasks:
    """A stand-in for a ``TaskGroup``'s set of tasks that iterates in the order tasks were added.

    ``TaskGroup`` cancels its remaining children by iterating a ``set``, an
    order CPython leaves open (it follows addresses); this makes it creation
    order, one of the orders CPython allows, the same on every side.
    """

    def __init__(self) -> None:
        self._tasks: Dict[Any, None] = {}

    def add(self, task: Any) -> None:
        self._tasks[task] = None

    def discard(self, task: Any) -> None:
        self._tasks.pop(task, None)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)


def _task_group() -> Any:
    """An ``asyncio.TaskGroup`` that cancels its children in creation order (see ``_CreationOrderedTasks``)."""
    group = asyncio.TaskGroup()  # type: ignore[attr-defined]
    if not isinstance(getattr(group, "_tasks", None), set):
        raise RuntimeError("asyncio.TaskGroup keeps its tasks in no set: its cancellation order cannot be fixed")
    group._tasks = _CreationOrderedTasks()
    return group


async def _nested_main() -> None:
    """The coroutine a ``nested_run`` step hands to ``run``; a conforming runner never starts it."""


async def _finished() -> str:
    """The coroutine of ``run_object: awaited``, run to its end before ``run`` is handed it (R-14)."""
    return "finished"


def _awaited_coroutine() -> Any:
    """A coroutine that has already been awaited to its end: running it again fails (R-14)."""
    coroutine = _finished()
    try:
        coroutine.send(None)
    except StopIteration:
        pass
    return coroutine


def _from_config(exc: BaseException) -> BaseException:
    """``exc`` marked as made by the runner configuration's ``loop_fails`` (its origin, as for raise steps)."""
    exc._conformance_origin = LOOP_FAILURE_ORIGIN  # type: ignore[attr-defined]
    return exc


def _failing_set_debug(enabled: bool) -> None:
    """The ``set_debug`` of the loop ``loop_fails: set_debug`` spoils (L-7)."""
    raise _from_config(RuntimeError("set_debug failed"))


class _HookedPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """The default event-loop policy, making its loops through a hook (see ``_Session._hooked_loop``)."""

    def __init__(self, hook: Callable[[Callable[[], Any]], Any]) -> None:
        super().__init__()
        self._hook = hook

    def new_event_loop(self) -> Any:
        return self._hook(super().new_event_loop)


class _TaskWithoutUncancel(asyncio.Task):  # type: ignore[misc,type-arg]
    """A Task class as written before Python 3.11, without ``uncancel()`` (``task_factory: legacy``, R-10)."""

    @property
    def uncancel(self) -> Any:
        raise AttributeError("uncancel")


def _set(variable: contextvars.ContextVar, value: Value) -> None:
    variable.set(value)


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _task_state(task: asyncio.Task) -> str:
    """A task's state, read without marking its exception as retrieved.

    Calling ``exception()`` would silence the "exception was never retrieved"
    report that is itself behaviour, so the stored exception is read directly
    where the Task implementation exposes it.
    """
    if not task.done():
        cancelling = getattr(task, "cancelling", None)
        return "pending (cancel requested)" if cancelling is not None and cancelling() else "pending"
    if task.cancelled():
        # Not its message: what ``result()`` raises depends on how often it was
        # called before (the first call hands out the stored exception). Who saw
        # which message is in the log, where the awaiting task recorded it.
        return "cancelled"
    exc = getattr(task, "_exception", None) if hasattr(task, "_exception") else task.exception()
    if exc is not None:
        return f"raised {format_exception(exc)}"
    return f"returned {task.result()!r}"


def _loop_state(loop: Any) -> str:
    if loop.is_running():
        return "running"
    return "closed" if loop.is_closed() else "open"


class _Awaitable:
    """An object with ``__await__`` that is not a coroutine (accepted from 3.14, R14-3)."""

    def __await__(self):  # type: ignore[no-untyped-def]
        return (yield from asyncio.sleep(0).__await__()) or "awaitable"
