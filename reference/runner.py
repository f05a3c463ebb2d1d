"""The reference Runner: CPython's ``asyncio.Runner`` and ``asyncio.run``, clause by clause.

This is the executable form of docs/spec.md. Every method and helper says which
clauses it implements (IDs as in the spec and in the research notes
``shared/research/runner-semantics.md``); where the spec and this code
disagree, that is a bug in one of them.

What it is for: the differential harness runs a scenario under a candidate
runner and under this one, and compares what it observes. Two knobs exist for
that purpose and nowhere in CPython:

``version``
    which CPython release to imitate where releases differ (see
    ``reference.versions``);
``cancel_order``
    the order in which ``close()`` cancels the tasks left over at shutdown and
    reports their errors. CPython uses the iteration order of a ``set`` of
    tasks, which it does not specify; the harness tries every order (K-1, K-5).

Everything else is the interpreter's own: the event loop (through
``asyncio.events.new_event_loop`` / ``set_event_loop``, looked up at call time
so that tests can patch them), the Task class, ``signal.signal`` and
``signal.getsignal``.

Standard library only; runs on CPython 3.9+ (``asyncio.Runner`` itself exists
from 3.11). On 3.9 and 3.10 ``loop.create_task`` takes no ``context``, so the
main task is created inside the runner's context and runs in a copy of it; see
docs/spec.md, "Running on other interpreters".
"""

from __future__ import annotations

import asyncio
import asyncio.constants
import asyncio.events
import asyncio.tasks
import collections.abc
import contextvars
import enum
import functools
import inspect
import signal
import sys
import threading
import types
from typing import Any, Callable, List, Optional, Sequence

from .versions import Behaviour, Version, behaviour_for

__all__ = ("Runner", "run")

#: L-1, R-3, E-1, G-1.
CLOSED_MESSAGE = "Runner is closed"
#: R-2.
NESTED_RUN_MESSAGE = "Runner.run() cannot be called from a running event loop"
#: A-2.
NESTED_ASYNCIO_RUN_MESSAGE = "asyncio.run() cannot be called from a running event loop"
#: K-5. It names asyncio.run() even when a bare Runner is closing.
SHUTDOWN_REPORT_MESSAGE = "unhandled exception during asyncio.run() shutdown"
#: R-1 (3.11-3.13), formatted with the rejected object's repr.
NOT_A_COROUTINE_MESSAGE = "a coroutine was expected, got {!r}"
#: R14-3 (3.14).
NOT_AWAITABLE_MESSAGE = "An asyncio.Future, a coroutine or an awaitable is required"
#: C-3: the value of ``asyncio.constants.THREAD_JOIN_TIMEOUT`` in 3.12+, used
#: when the interpreter's ``asyncio.constants`` has no such name (3.9-3.11).
FALLBACK_THREAD_JOIN_TIMEOUT = 300

#: R-5: ``loop.create_task(coro, context=...)`` exists from 3.11 on.
_CREATE_TASK_TAKES_CONTEXT = sys.version_info >= (3, 11)

#: A ``cancel_order``: given the leftover tasks, return them in cancellation order.
CancelOrder = Callable[[List["asyncio.Task[Any]"]], Sequence["asyncio.Task[Any]"]]


class _Phase(enum.Enum):
    """The runner's life cycle (L-1, L-2, L-7, C-1): fresh → ready → closed."""

    FRESH = "fresh"
    READY = "ready"
    CLOSED = "closed"


class Runner:
    """Owns one event loop and runs coroutines in it, like ``asyncio.Runner``.

    ``debug`` and ``loop_factory`` mean what they mean for ``asyncio.Runner``.
    ``version`` selects the CPython release to imitate, ``(3, 11)`` to
    ``(3, 14)``; ``None`` means ``reference.default_version()``. ``cancel_order``
    is ``None`` (CPython's own order) or a callable that receives the list of
    tasks left over at ``close()`` and returns the same tasks in the order to
    cancel them and to report their exceptions in (K-1, K-5).

    Construction does nothing observable (I-2): the loop, the context and the
    SIGINT handler are all dealt with on first use (L-*, R-6).
    """

    # I-3: a plain class; CPython documents Runner as final but does not
    # enforce it, so subclassing works here too.

    def __init__(
        self,
        *,
        debug: Optional[bool] = None,
        loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None,
        version: Optional[Sequence[int]] = None,
        cancel_order: Optional[CancelOrder] = None,
    ) -> None:
        """I-1 (keyword-only), I-2 (inert: no loop, no context, no signal handler,
        ``debug`` and ``loop_factory`` not validated), I-4 (no thread affinity).

        Only the two reference-only arguments are checked, so that a harness
        typo fails at once: ``version`` must be in the table, ``cancel_order``
        callable or ``None``.
        """
        self._behaviour: Behaviour = behaviour_for(version)
        if cancel_order is not None and not callable(cancel_order):  # pragma: outside harness: given a callable
            raise TypeError(f"cancel_order must be callable or None, got {cancel_order!r}")
        self._cancel_order = cancel_order
        self._debug = debug
        self._loop_factory = loop_factory
        self._phase = _Phase.FRESH
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._context: Optional[contextvars.Context] = None
        # L-3: whether this runner has made one of its loops the thread's
        # current loop; it does so at most once, and undoes it in close().
        self._made_loop_current = False
        # S-1, S-2, R-8, R-10: SIGINTs received during the current run().
        self._sigint_count = 0

    @property
    def version(self) -> Version:  # pragma: outside harness: read by tests only
        """The CPython ``(major, minor)`` this runner imitates (reference only)."""
        return self._behaviour.version

    # ------------------------------------------------------------ with-block

    def __enter__(self) -> Runner:
        """E-1: initialise (L-*) and return the runner itself; E-2: entering
        an open runner again is allowed. On a closed runner: L-1."""
        self._ensure_ready()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        """E-3: close the runner and return ``None``, so nothing is suppressed.

        If ``close()`` raises, that exception replaces the one leaving the
        block (which becomes its ``__context__``). E-2: in nested blocks the
        inner exit closes the runner and the outer one is a no-op (C-1).
        """
        self.close()

    # ------------------------------------------------------------ the loop

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """G-1: initialise if needed (L-*) and return the runner's loop.

        On a closed runner: ``RuntimeError("Runner is closed")`` (L-1).
        """
        self._ensure_ready()
        assert self._loop is not None
        return self._loop

    def _ensure_ready(self) -> None:
        """L-1, L-2, L-5, L-6, L-7: the lazy initialisation.

        - L-1: closed → ``RuntimeError("Runner is closed")``. Only the runner's
          own phase is consulted, never ``loop.is_closed()`` (R-15).
        - L-2: already initialised → nothing.
        - L-3/L-4: make the loop (``_new_loop``).
        - L-5: apply ``debug`` unless it is ``None`` (factory loops too).
        - L-6: copy the *current* context now, at first initialisation, not at
          construction.
        - L-7: the phase advances only when all of that succeeded. If the loop
          cannot be made, the next call tries again; if ``set_debug`` fails,
          the loop just made is abandoned (``close()`` will not close it).
        """
        if self._phase is _Phase.CLOSED:
            raise RuntimeError(CLOSED_MESSAGE)
        if self._phase is _Phase.READY:
            return
        self._loop = self._new_loop()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        self._context = contextvars.copy_context()
        self._phase = _Phase.READY

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        """L-3, L-4: a new loop, from the factory or from the event-loop policy.

        - L-4: with a factory, call it with no arguments and do nothing else;
          making that loop current is the factory's business.
        - L-3: without one, ``asyncio.events.new_event_loop()``; and the first
          time only, for the whole life of this runner (gh-95899, PR #95900),
          make it the thread's current loop with ``asyncio.events.set_event_loop``
          (gh-93896, PR #94593). If an earlier initialisation got this far and
          then failed (L-7), the new loop is *not* made current.
        """
        if self._loop_factory is not None:
            return self._loop_factory()
        loop = asyncio.events.new_event_loop()
        if not self._made_loop_current:
            asyncio.events.set_event_loop(loop)
            self._made_loop_current = True
        return loop

    # ------------------------------------------------------------ run

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        """Run ``coro`` as the main task in the runner's loop and return its result.

        The order of the three admission checks depends on the version:

        - 3.11-3.13: R-1 the argument must be a coroutine (``ValueError``;
          nothing else happens), then R-2 no loop may be running in this
          thread, then R-3 initialise (L-*; closed → "Runner is closed").
        - 3.14: R14-2 first the running-loop check, then initialisation (so a
          bad argument still creates the loop), then R14-3 the argument: a
          coroutine is used as it is, another awaitable is wrapped, anything
          else is a ``TypeError`` (gh-120284, PR #120566).

        No rejected coroutine is closed (R-2, R-3), so Python warns that it
        was never awaited. Then R-4..R-16 (``_run_main_task``).
        """
        if self._behaviour.loop_checked_before_type:
            self._refuse_inside_running_loop()
            self._ensure_ready()
            coro = self._admit_awaitable(coro)
        else:
            self._admit_coroutine(coro)
            self._refuse_inside_running_loop()
            self._ensure_ready()
        # no context means the runner's own, shared by every run().
        # (`is None`, not falsiness: an empty Context is falsy.)
        if context is None:
            context = self._context
        assert context is not None
        return self._run_main_task(coro, context)

    def _admit_coroutine(self, obj: Any) -> None:
        """R-1 (3.11-3.13): reject anything ``asyncio.iscoroutine`` rejected then.

        Coroutine objects and ``collections.abc.Coroutine`` instances pass; in
        3.11 plain generator objects pass too (gh-102748 removed that in
        3.12). Futures, Tasks and other awaitables are rejected with
        ``ValueError("a coroutine was expected, got <repr>")``.
        """
        if not _is_coroutine(obj, self._behaviour.generators_are_coroutines):
            raise ValueError(NOT_A_COROUTINE_MESSAGE.format(obj))

    def _admit_awaitable(self, obj: Any) -> Any:
        """R14-3 (3.14): return a coroutine to run for ``obj``.

        A coroutine is returned as it is. Any other awaitable (``Future``,
        ``Task``, an object with ``__await__``, a ``@types.coroutine``
        generator) is wrapped in ``_wrap_awaitable``. Anything else, plain
        generators included, is a ``TypeError``.
        """
        if _is_coroutine(obj, generators_count=False):
            return obj
        if inspect.isawaitable(obj):
            return _wrap_awaitable(obj)
        raise TypeError(NOT_AWAITABLE_MESSAGE)

    @staticmethod
    def _refuse_inside_running_loop() -> None:
        """R-2: ``RuntimeError`` if an event loop is running in this thread.

        Uses ``asyncio.events._get_running_loop`` (no error when none runs).
        """
        if asyncio.events._get_running_loop() is not None:
            raise RuntimeError(NESTED_RUN_MESSAGE)

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        """R-5..R-13: create the main task, guard it with SIGINT handling, run it.

        - R-5: create the task in the runner's loop with ``context``.
        - R-6, R-7: install the SIGINT handler, *after* the task exists.
        - R-8: zero the interrupt count, on every run.
        - R-9, R-12, R-13: whatever ``loop.run_until_complete(task)`` returns or
          raises is the outcome (the result object itself; the same exception
          object), except that
        - R-10: a ``CancelledError`` after a SIGINT becomes a new
          ``KeyboardInterrupt`` when the runner's own cancellation was the last
          one outstanding (``_sigint_caused_cancellation``).
        - R-11: put the default SIGINT handler back if ours is still installed.
        """
        assert self._loop is not None
        task = _create_main_task(self._loop, coro, context)
        handler = self._install_sigint_handler(task)
        self._sigint_count = 0
        try:
            return self._loop.run_until_complete(task)
        except asyncio.CancelledError:
            if self._sigint_caused_cancellation(task):
                # A fresh exception: no args, no __cause__, and the
                # CancelledError as its (unsuppressed) __context__.
                raise KeyboardInterrupt()  # noqa: B904
            raise
        finally:
            self._restore_sigint_handler(handler)

    def _sigint_caused_cancellation(self, task: Any) -> bool:
        """R-10: should this ``CancelledError`` surface as ``KeyboardInterrupt``?

        Only if a SIGINT arrived during this run and the task's ``uncancel()``
        (which this call performs, once) brings its cancellation count to 0,
        i.e. nobody else asked for the cancellation too (S-3,
        ``test_interrupt_cancelled_task``). A task without ``uncancel`` (a
        duck-typed task from a custom factory, or any task before 3.11) never
        converts (gh-95097, PR #95211).
        """
        if self._sigint_count == 0:
            return False
        uncancel = getattr(task, "uncancel", None)
        if uncancel is None:
            return False
        return uncancel() == 0

    # ------------------------------------------------------------ SIGINT

    def _install_sigint_handler(self, main_task: Any) -> Optional[Callable[..., None]]:
        """R-6: install the runner's SIGINT handler for this run, if allowed.

        Only in the main thread (I-4), and only when the current handler is
        exactly ``signal.default_int_handler``: a custom handler, ``SIG_IGN``
        and ``SIG_DFL`` are left alone. ``ValueError`` from ``signal.signal``
        (an embedded interpreter without signal handling, gh-91880, PR #91881)
        means no handler. Returns the installed handler, or ``None``.

        The handler is a ``functools.partial`` holding the main task, as in
        CPython. That matters for R-16 (gh-112559): before 3.13.0a3 the signal
        module computed the handler's repr, and so the main task's and its
        result's, when it was read back or replaced.
        """
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None
        handler = functools.partial(self._handle_sigint, main_task=main_task)
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # pragma: outside harness: subinterpreters only (gh-91880)
            return None
        return handler

    @staticmethod
    def _restore_sigint_handler(handler: Optional[Callable[..., None]]) -> None:
        """R-11: reinstall ``signal.default_int_handler`` when the run ends, but
        only if this run installed ``handler`` and it is still the current one.
        A handler installed by user code during the run stays."""
        if handler is None:
            return
        if signal.getsignal(signal.SIGINT) is handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _handle_sigint(self, signum: int, frame: Any, main_task: Any) -> None:
        """S-1, S-2, S-6: the SIGINT handler (also run by ``_thread.interrupt_main``).

        - S-1: the first SIGINT of a run, while the main task is not done,
          cancels the main task (no message) and wakes the loop with
          ``call_soon_threadsafe`` in case it is blocked in ``select()``;
          ``run()`` later turns the cancellation into ``KeyboardInterrupt``
          (R-10).
        - S-2: any later SIGINT, or one that arrives when the main task is
          already done, raises ``KeyboardInterrupt`` right here, in whatever
          code the main thread is running.
        """
        self._sigint_count += 1
        if self._sigint_count > 1 or main_task.done():
            raise KeyboardInterrupt()
        main_task.cancel()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_wake_up)

    # ------------------------------------------------------------ close

    def close(self) -> None:
        """C-1..C-6: shut the loop down and close it; the runner is then closed.

        - C-1: a no-op unless the runner is initialised. Closing a fresh runner
          leaves it fresh and usable; closing twice is harmless.
        - C-2: cancel the leftover tasks (K-*), then finalise async generators,
          then shut the default executor down (C-3), each by running the loop.
        - C-4: whatever happens there, then make the thread's loop ``None`` if
          this runner made its loop current, close the loop, forget it and
          mark the runner closed (``_release``); an exception from the steps
          propagates after that and the remaining steps are skipped.
        - C-5: the runner's context and interrupt count are kept.
        - C-6: nothing stops a call from inside the running loop. Then the
          steps fail, the loop refuses to close, and the runner stays
          initialised (``_release`` fails before marking it closed).
        """
        if self._phase is not _Phase.READY:
            return
        loop = self._loop
        assert loop is not None
        try:
            self._shut_down(loop)
        finally:
            self._release(loop)

    def _shut_down(self, loop: asyncio.AbstractEventLoop) -> None:
        """C-2, C-3: leftover tasks first, then async generators, then the executor."""
        _cancel_leftover_tasks(loop, self._cancel_order)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(_shutdown_default_executor(loop, self._behaviour))

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        """C-2, C-4, C-6: the part of ``close()`` that always runs.

        Reset the thread's current loop if (and only if) this runner set it
        (L-3), close the loop, and only then (so not when ``loop.close()``
        raises, C-6) forget the loop and mark the runner closed.
        """
        if self._made_loop_current:
            asyncio.events.set_event_loop(None)
        loop.close()
        self._loop = None
        self._phase = _Phase.CLOSED


# ---------------------------------------------------------------- helpers


def _is_coroutine(obj: Any, generators_count: bool) -> bool:
    """R-1, R14-3: ``asyncio.iscoroutine`` as the selected version defined it.

    Coroutine objects and ``collections.abc.Coroutine`` instances always
    count; plain generator objects only where ``generators_count`` (3.11,
    gh-102748). Written out here rather than delegated to the interpreter so
    that one interpreter can imitate every version.
    """
    if isinstance(obj, (types.CoroutineType, collections.abc.Coroutine)):
        return True
    return generators_count and isinstance(obj, types.GeneratorType)


async def _wrap_awaitable(awaitable: Any) -> Any:
    """R14-3: the coroutine that runs a non-coroutine awaitable in 3.14.

    Its name is observable (the main task's coroutine is called
    ``_wrap_awaitable``). A SIGINT cancels this wrapper's task, and the
    cancellation reaches the awaited object through the ``await``.
    """
    return await awaitable


def _create_main_task(loop: asyncio.AbstractEventLoop, coro: Any, context: contextvars.Context) -> Any:
    """R-5: the main task, created by the loop (and so by its task factory).

    From 3.11 the context is passed as ``context=`` (a custom task factory
    receives it as a keyword). Before 3.11 ``create_task`` has no such
    parameter, so the task is created *inside* ``context`` and, as Tasks did
    then, runs in a copy of it.
    """
    if _CREATE_TASK_TAKES_CONTEXT:
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # pragma: py<3.11: create_task takes no context


def _wake_up() -> None:
    """S-1: the no-op callback that wakes a loop blocked in ``select()``."""


def _order_leftovers(leftovers: List[Any], cancel_order: Optional[CancelOrder]) -> List[Any]:
    """K-1, K-5: the order in which to cancel the leftovers and report their errors.

    Without ``cancel_order`` it is the snapshot's own iteration order, as in
    CPython, which iterates a ``set`` and so leaves the order unspecified.
    With one, it is whatever the callable returns, which must be the same
    tasks, each once (``ValueError`` otherwise).
    """
    if cancel_order is None:
        return leftovers  # pragma: outside harness: the interpreter always passes an order
    ordered = list(cancel_order(list(leftovers)))
    if len(ordered) != len(leftovers) or set(ordered) != set(leftovers):  # pragma: outside harness: a permutation
        raise ValueError("cancel_order must return the tasks it was given, each exactly once")
    return ordered


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop, cancel_order: Optional[CancelOrder] = None) -> None:
    """K-1..K-6: cancel every task still pending in ``loop`` and wait for them.

    - K-1: take one snapshot, ``asyncio.all_tasks(loop)``; if it is empty,
      leave the loop alone.
    - K-2: ``cancel()`` each task without a message, in ``_order_leftovers``
      order.
    - K-3: run the loop until all of them are done, with no time limit.
    - K-4: a single pass: tasks created meanwhile are neither cancelled nor
      awaited.
    - K-5: then, in the same order, report each task that ended with an
      exception (not cancelled, not returned normally) to
      ``loop.call_exception_handler`` with exactly ``message``, ``exception``
      and ``task``.
    - K-6: ``KeyboardInterrupt`` / ``SystemExit`` from a task escape the
      loop, and so this function (C-4 then still closes the loop).
    """
    snapshot = asyncio.tasks.all_tasks(loop)
    if not snapshot:
        return
    ordered = _order_leftovers(list(snapshot), cancel_order)
    for task in ordered:
        task.cancel()
    loop.run_until_complete(asyncio.tasks.gather(*ordered, return_exceptions=True))
    for task in ordered:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None:
            loop.call_exception_handler({"message": SHUTDOWN_REPORT_MESSAGE, "exception": error, "task": task})


def _shutdown_default_executor(loop: asyncio.AbstractEventLoop, behaviour: Behaviour) -> Any:
    """C-3: the ``loop.shutdown_default_executor(...)`` coroutine for ``close()``.

    3.11 passes no timeout (wait for the executor however long it takes).
    From 3.12 (GH-82448, PR #97561) the timeout is
    ``asyncio.constants.THREAD_JOIN_TIMEOUT``, read now so that it can be
    patched, or 300 s where the interpreter has no such constant. It is only
    passed if the loop's method accepts an argument (3.9-3.11 loops do not).
    What the timeout does is the loop's business: nothing in 3.12.1, a
    warning and an abandoned executor from 3.13.0a5 (gh-111358, PR #115622).
    """
    shutdown = loop.shutdown_default_executor
    if not behaviour.executor_join_timeout:
        return shutdown()
    timeout = getattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", FALLBACK_THREAD_JOIN_TIMEOUT)
    if _accepts_argument(shutdown, timeout):
        return shutdown(timeout)  # pragma: py>=3.12: earlier loops take no timeout
    return shutdown()  # pragma: py<3.12: later loops take a timeout


def _accepts_argument(func: Callable[..., Any], argument: Any) -> bool:
    """C-3: can ``func(argument)`` be called, by its signature?

    A callable whose signature cannot be read gets the benefit of the doubt,
    as CPython passes the timeout unconditionally.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: outside harness: asyncio's loops have signatures
        return True
    try:
        signature.bind(argument)
    except TypeError:  # pragma: py<3.12: later loops take a timeout
        return False
    return True  # pragma: py>=3.12: earlier loops take no timeout


# ---------------------------------------------------------------- run()


def run(
    main: Any,
    *,
    debug: Optional[bool] = None,
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None,
    version: Optional[Sequence[int]] = None,
    cancel_order: Optional[CancelOrder] = None,
) -> Any:
    """A-1..A-3, R14-5: ``asyncio.run``: run ``main`` in a new runner and close it.

    - A-1: ``loop_factory`` exists from 3.12 (gh-99388); imitating 3.11, a
      ``loop_factory`` is refused with the ``TypeError`` Python gives for an
      unexpected keyword. (Only a non-``None`` one: unlike CPython 3.11, an
      explicit ``loop_factory=None`` is accepted.)
    - A-2: refuse to run inside a running loop, with this function's own
      message, before any runner exists; ``main`` is not closed.
    - A-3: otherwise ``with Runner(...) as runner: return runner.run(main)``.
      Entering initialises, so even a rejected ``main`` costs a loop that is
      created, made current and closed again.
    """
    behaviour = behaviour_for(version)
    if loop_factory is not None and not behaviour.run_accepts_loop_factory:
        raise TypeError("run() got an unexpected keyword argument 'loop_factory'")
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError(NESTED_ASYNCIO_RUN_MESSAGE)
    with Runner(debug=debug, loop_factory=loop_factory, version=behaviour.version, cancel_order=cancel_order) as runner:
        return runner.run(main)
