"""The mutant catalogue: deliberately broken runners, loops and run functions.

A conformance suite that never fails proves nothing. Each mutant here is one
small, plausible mistake against one clause of docs/spec.md, and ``conformance
selftest`` (``conformance.selftest``) runs the same campaign as ``conformance
run`` against every one of them: a mutant that is not caught is a hole in the
generators or in the comparison.

* Runner mutants subclass ``reference.Runner`` and change exactly one
  behaviour, so that everything else is exactly right and a divergence can only
  come from the mistake. (They are not given the reference's ``cancel_order``,
  so, like CPython, they cancel leftover tasks in the order of a set.)
* Loop mutants subclass asyncio's own loop and are driven, like any loop
  candidate, by ``asyncio.Runner(loop_factory=...)``.
* Run mutants are ``asyncio.run``-like functions.

``CATALOGUE`` says for each mutant which clause it breaks and what kind of
candidate it is; ``survives`` names the scenario element a mutant needs and the
generators do not produce yet (it is then expected to survive, and says why).
``NOT_MUTATED`` gives, for every other clause of the spec, the reason it has no
mutant. Together they cover every clause ID of docs/spec.md.

This module is loaded by worker processes: standard library and ``reference``
only, Python 3.9+.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextvars
import functools
import inspect
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import reference
from reference.runner import (
    CLOSED_MESSAGE,
    NESTED_ASYNCIO_RUN_MESSAGE,
    SHUTDOWN_REPORT_MESSAGE,
    _cancel_leftover_tasks,
    _create_main_task,
    _Phase,
    _shutdown_default_executor,
)
from reference.versions import SUPPORTED_VERSIONS, Version

Kind = str  # "runner", "loop" or "run": how the suite drives the mutant (see conformance.targets)


@dataclass(frozen=True)
class Mutant:
    """One catalogue entry: where the mutant is, what it breaks, and whether it can be caught yet."""

    name: str
    clause: str
    kind: Kind = "runner"
    #: The scenario element the mistake needs and the generators lack; None: it must be caught.
    survives: Optional[str] = None
    #: The CPython versions (as imitated by the reference) in which the clause exists.
    versions: Tuple[Version, ...] = SUPPORTED_VERSIONS

    @property
    def spec(self) -> str:
        """The ``--candidate`` spec that loads this mutant."""
        return f"{__name__}:{self.name}"

    @property
    def mistake(self) -> str:
        """The first line of the mutant's docstring: the clause and the mistake."""
        doc = globals()[self.name].__doc__ or ""
        return doc.strip().split("\n", 1)[0]

    def expected_to_survive(self, version: Version) -> Optional[str]:
        """Why this mutant cannot be caught against a reference imitating ``version``, or None."""
        if tuple(version) not in self.versions:
            return f"{self.clause} does not exist in {version[0]}.{version[1]}"
        return self.survives


# ---------------------------------------------------------------- construction and initialisation


class PositionalArgumentsAccepted(reference.Runner):
    """I-1 broken: ``debug`` and ``loop_factory`` may also be passed positionally."""

    def __init__(self, debug: Optional[bool] = None, loop_factory: Any = None, **kwargs: Any) -> None:
        super().__init__(debug=debug, loop_factory=loop_factory, **kwargs)


class InitialisesAtConstruction(reference.Runner):
    """I-2 broken: the constructor initialises at once (makes the loop, copies the context) instead of on first use."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ensure_ready()


class MainThreadOnly(reference.Runner):
    """I-4 broken: the runner refuses to initialise outside the main thread."""

    def _ensure_ready(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("Runner can only be used from the main thread")
        super()._ensure_ready()


class ClosedRunnerReopens(reference.Runner):
    """L-1 broken: ``close()`` puts the runner back to fresh, so a later call makes a new loop instead of raising."""

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        super()._release(loop)
        self._phase = _Phase.FRESH


class ReenteringMakesNewLoop(reference.Runner):
    """L-2 broken: entering an open runner again (nested ``with``) initialises again, abandoning the first loop."""

    def __enter__(self) -> reference.Runner:
        if self._phase is _Phase.READY:
            self._phase = _Phase.FRESH
        return super().__enter__()


class DefaultLoopNotMadeCurrent(reference.Runner):
    """L-3 broken: the loop made without a factory is never made the thread's current loop."""

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop_factory is not None:
            return self._loop_factory()
        return asyncio.events.new_event_loop()


class FactoryLoopMadeCurrent(reference.Runner):
    """L-4 broken: a loop from ``loop_factory`` is made the thread's current loop, as a default loop is."""

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        loop = super()._new_loop()
        if self._loop_factory is not None and not self._made_loop_current:
            asyncio.events.set_event_loop(loop)
            self._made_loop_current = True
        return loop


class DebugIgnoredForFactoryLoops(reference.Runner):
    """L-5 broken: ``debug`` is applied to loops the runner makes itself, not to loops from ``loop_factory``."""

    def _ensure_ready(self) -> None:
        if self._phase is _Phase.FRESH and self._loop_factory is not None:
            self._debug = None
        super()._ensure_ready()


class ContextCopiedAtConstruction(reference.Runner):
    """L-6 broken: the runner's context is copied when it is constructed, not when it first initialises."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._context_at_construction = contextvars.copy_context()

    def _ensure_ready(self) -> None:
        fresh = self._phase is _Phase.FRESH
        super()._ensure_ready()
        if fresh:
            self._context = self._context_at_construction


class ReadyBeforeTheLoopExists(reference.Runner):
    """L-7 broken: the runner counts as initialised before its loop is made, so a failed attempt is never retried."""

    def _ensure_ready(self) -> None:
        if self._phase is not _Phase.FRESH:
            super()._ensure_ready()
            return
        self._phase = _Phase.READY
        self._context = contextvars.copy_context()
        self._loop = self._new_loop()
        if self._debug is not None:
            self._loop.set_debug(self._debug)


# ---------------------------------------------------------------- with-block, get_loop


class EnterReturnsNone(reference.Runner):
    """E-1 broken: ``__enter__`` initialises but forgets to return the runner."""

    def __enter__(self) -> None:  # type: ignore[override]
        self._ensure_ready()


class NestedWithOnlyOutermostCloses(reference.Runner):
    """E-2 broken: nested ``with`` blocks are counted, and only the outermost exit closes the runner."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._depth = 0

    def __enter__(self) -> reference.Runner:
        entered = super().__enter__()
        self._depth += 1
        return entered

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.close()


class ExitSuppressesExceptions(reference.Runner):
    """E-3 broken: ``__exit__`` returns True, so an exception leaving the with-block is swallowed."""

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> bool:  # type: ignore[override]
        self.close()
        return True


class GetLoopDoesNotInitialise(reference.Runner):
    """G-1 broken: ``get_loop()`` returns the loop it has (None on a fresh runner) instead of initialising."""

    def get_loop(self) -> Any:
        if self._phase is _Phase.CLOSED:
            raise RuntimeError(CLOSED_MESSAGE)
        return self._loop


# ---------------------------------------------------------------- close


class CloseBeforeUseCloses(reference.Runner):
    """C-1 broken: ``close()`` on a runner never used marks it closed, so it cannot be used afterwards."""

    def close(self) -> None:
        if self._phase is _Phase.FRESH:
            self._phase = _Phase.CLOSED
            return
        super().close()


class AsyncGensFinalisedBeforeLeftovers(reference.Runner):
    """C-2 broken (order): async generators are finalised before the leftover tasks are cancelled."""

    def _shut_down(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(loop.shutdown_asyncgens())
        _cancel_leftover_tasks(loop, self._cancel_order)
        loop.run_until_complete(_shutdown_default_executor(loop, self._behaviour))


class LoopLeftOpen(reference.Runner):
    """C-2 broken (loop not closed): ``close()`` shuts everything down but never closes the loop."""

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._made_loop_current:
            asyncio.events.set_event_loop(None)
        self._loop = None
        self._phase = _Phase.CLOSED


class ThreadLoopNotReset(reference.Runner):
    """C-2 broken (thread loop): ``close()`` leaves the closed loop as the thread's current loop."""

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.close()
        self._loop = None
        self._phase = _Phase.CLOSED


class ExecutorShutdownNotAwaited(reference.Runner):
    """C-3 broken: ``close()`` creates the executor shutdown coroutine but never runs it in the loop."""

    def _shut_down(self, loop: asyncio.AbstractEventLoop) -> None:
        _cancel_leftover_tasks(loop, self._cancel_order)
        loop.run_until_complete(loop.shutdown_asyncgens())
        _shutdown_default_executor(loop, self._behaviour)


class CloseSkipsCleanupOnError(reference.Runner):
    """C-4 broken: when a shutdown step raises, ``close()`` skips the rest: the loop stays open and current."""

    def close(self) -> None:
        if self._phase is not _Phase.READY:
            return
        loop = self._loop
        assert loop is not None
        self._shut_down(loop)
        self._release(loop)


class CloseRefusedInsideItsLoop(reference.Runner):
    """C-6 broken: ``close()`` refuses to run inside the runner's own running loop (a guard CPython lacks)."""

    def close(self) -> None:
        if self._loop is not None and self._loop.is_running():
            raise RuntimeError("Runner.close() cannot be called from a running event loop")
        super().close()


# ---------------------------------------------------------------- run


class TypeCheckedAfterInitialising(reference.Runner):
    """R-1 broken: ``run()`` initialises before checking its argument, so a rejected object still costs a loop."""

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        self._ensure_ready()
        return super().run(coro, context=context)


class NoRunningLoopCheck(reference.Runner):
    """R-2 broken: ``run()`` does not refuse to run inside a running event loop."""

    @staticmethod
    def _refuse_inside_running_loop() -> None:
        return None


class ClosedRunClosesCoroutine(reference.Runner):
    """R-3 broken: a closed runner closes the coroutine it refuses, so Python never warns it was not awaited."""

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        if self._phase is _Phase.CLOSED and asyncio.iscoroutine(coro):
            coro.close()
        return super().run(coro, context=context)


class EmptyContextReplacedByRunnerContext(reference.Runner):
    """R-4 broken: ``context=`` is tested for truth, so an empty Context is replaced by the runner's own."""

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        return super().run(coro, context=context or None)


class MainTaskInCallersContext(reference.Runner):
    """R-5 broken: the main task is created without ``context=``, so it runs in a copy of the caller's context."""

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        return super()._run_main_task(coro, contextvars.copy_context())


class SigintHandlerNeverInstalled(reference.Runner):
    """R-6 broken: ``run()`` never installs its SIGINT handler, so a SIGINT raises KeyboardInterrupt in task code."""

    def _install_sigint_handler(self, main_task: Any) -> None:
        return None


class SigintHandlerReplacesCustomHandler(reference.Runner):
    """R-6 broken: ``run()`` installs its SIGINT handler over any handler, not only over the default one."""

    def _install_sigint_handler(self, main_task: Any) -> Optional[Callable[..., None]]:
        if threading.current_thread() is not threading.main_thread():
            return None
        handler = functools.partial(self._handle_sigint, main_task=main_task)
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:
            return None
        return handler


class _MainTaskToBe:
    """Stands for the main task in a SIGINT handler installed before the task exists."""

    task: Any = None

    def done(self) -> bool:
        return self.task.done()

    def cancel(self) -> bool:
        return self.task.cancel()


class SigintHandlerInstalledBeforeMainTask(reference.Runner):
    """R-7 broken: the SIGINT handler is installed before the main task is made, so a task factory already sees it."""

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        assert self._loop is not None
        main = _MainTaskToBe()
        handler = self._install_sigint_handler(main)
        try:
            main.task = _create_main_task(self._loop, coro, context)
        except BaseException:
            self._restore_sigint_handler(handler)
            raise
        self._sigint_count = 0
        try:
            return self._loop.run_until_complete(main.task)
        except asyncio.CancelledError:
            if self._sigint_caused_cancellation(main.task):
                raise KeyboardInterrupt()  # noqa: B904 - as the reference: a fresh one (R-10)
            raise
        finally:
            self._restore_sigint_handler(handler)


class SigintCountNotReset(reference.Runner):
    """R-8 broken: SIGINTs are counted over the runner's life, so a later run's first SIGINT raises at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sigints_so_far = 0

    def _handle_sigint(self, signum: int, frame: Any, main_task: Any) -> None:
        self._sigint_count = self._sigints_so_far
        self._sigints_so_far += 1
        super()._handle_sigint(signum, frame, main_task)


class AwaitedCoroutineRefused(reference.Runner):
    """R-14 broken: ``run()`` refuses a coroutine that was already awaited as if it were no coroutine (ValueError)."""

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED:
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        return super().run(coro, context=context)


async def _await_without_result(coro: Any) -> None:
    await coro


class MainWrapperDropsResult(reference.Runner):
    """R-9 broken: the main coroutine runs inside a wrapper that awaits it but forgets to return its result."""

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        return super()._run_main_task(_await_without_result(coro), context)


class NewLoopWhenTheUserClosedIt(reference.Runner):
    """R-15 broken: when the user closed the runner's loop, the runner quietly makes a new one and runs in it."""

    def _ensure_ready(self) -> None:
        if self._phase is _Phase.READY and self._loop is not None and self._loop.is_closed():
            self._phase = _Phase.FRESH
        super()._ensure_ready()


class SigintEndsInCancelledError(reference.Runner):
    """R-10 broken: a run cancelled by SIGINT ends in CancelledError instead of a fresh KeyboardInterrupt."""

    def _sigint_caused_cancellation(self, task: Any) -> bool:
        return False


class SigintWithoutUncancelIsKeyboardInterrupt(reference.Runner):
    """R-10 broken: a SIGINT-cancelled main task without ``uncancel()`` still ends the run in KeyboardInterrupt."""

    def _sigint_caused_cancellation(self, task: Any) -> bool:
        if self._sigint_count and getattr(task, "uncancel", None) is None:
            return True
        return super()._sigint_caused_cancellation(task)


class SigintNotRestored(reference.Runner):
    """R-11 broken: the Ctrl-C handler is left installed after ``run()``."""

    def run(self, coro: Any, *, context: Optional[contextvars.Context] = None) -> Any:
        try:
            return super().run(coro, context=context)
        finally:
            handler = signal.getsignal(signal.SIGINT)
            if handler is signal.default_int_handler:
                signal.signal(signal.SIGINT, _ignore_sigint)


def _ignore_sigint(signum: int, frame: Any) -> None:
    """The handler ``SigintNotRestored`` leaves behind."""


class DefaultHandlerRestoredOverUsers(reference.Runner):
    """R-11 broken: the default SIGINT handler is put back after a run even over one user code installed during it."""

    @staticmethod
    def _restore_sigint_handler(handler: Optional[Callable[..., None]]) -> None:
        if handler is not None:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class MainExceptionReraisedAsCopy(reference.Runner):
    """R-12 broken: ``run()`` raises a copy of the main task's exception (type and args), not the object itself."""

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        try:
            return super()._run_main_task(coro, context)
        except Exception as exc:
            raise type(exc)(*exc.args) from None


class RunCancelsPendingMain(reference.Runner):
    """R-12 broken: when the loop stops early (a child's KeyboardInterrupt), ``run()`` cancels the pending main task."""

    def _install_sigint_handler(self, main_task: Any) -> Optional[Callable[..., None]]:
        self._main_task = main_task
        return super()._install_sigint_handler(main_task)

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        try:
            return super()._run_main_task(coro, context)
        except BaseException:
            if not self._main_task.done():
                self._main_task.cancel()
            raise


class RunRestartsStoppedLoop(reference.Runner):
    """R-13 broken: when user code stops the loop, ``run()`` starts it again until the main task is done."""

    def _install_sigint_handler(self, main_task: Any) -> Optional[Callable[..., None]]:
        self._main_task = main_task
        return super()._install_sigint_handler(main_task)

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        try:
            return super()._run_main_task(coro, context)
        except RuntimeError:
            if self._main_task.done() or self._loop is None or self._loop.is_closed():
                raise
            return self._loop.run_until_complete(self._main_task)


# ---------------------------------------------------------------- SIGINT


class SigintCancelsWithMessage(reference.Runner):
    """S-1 broken: the first SIGINT cancels the main task with a message instead of none."""

    def _handle_sigint(self, signum: int, frame: Any, main_task: Any) -> None:
        self._sigint_count += 1
        if self._sigint_count > 1 or main_task.done():
            raise KeyboardInterrupt()
        main_task.cancel("KeyboardInterrupt")
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_wake_up)


def _wake_up() -> None:
    """Wakes a loop blocked in ``select()`` (S-1)."""


class EverySigintCancels(reference.Runner):
    """S-2 broken: every SIGINT of a run cancels the pending main task; none raises KeyboardInterrupt at once."""

    def _handle_sigint(self, signum: int, frame: Any, main_task: Any) -> None:
        self._sigint_count = 0
        super()._handle_sigint(signum, frame, main_task)


class InterruptOverridesMainResult(reference.Runner):
    """S-3 broken: after a SIGINT the run ends in KeyboardInterrupt, even if the main task swallowed it and returned."""

    def _run_main_task(self, coro: Any, context: contextvars.Context) -> Any:
        result = super()._run_main_task(coro, context)
        if self._sigint_count:
            raise KeyboardInterrupt()
        return result


class SigintUncancelsAtOnce(reference.Runner):
    """S-4 broken: the SIGINT handler uncancels the main task right after cancelling it, hiding it from timeouts."""

    def _handle_sigint(self, signum: int, frame: Any, main_task: Any) -> None:
        super()._handle_sigint(signum, frame, main_task)
        uncancel = getattr(main_task, "uncancel", None)
        if uncancel is not None:
            uncancel()


class CloseIgnoresSigint(reference.Runner):
    """S-5 broken: ``close()`` ignores SIGINT while it shuts down, so Ctrl-C cannot interrupt a leftover's cleanup."""

    def close(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            super().close()
            return
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            super().close()
        finally:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- leftover tasks


def _cancel_leftovers(
    loop: asyncio.AbstractEventLoop, message: Optional[str] = None, drain: bool = True, report: bool = True
) -> None:
    """The reference's leftover cancellation (K-1..K-5) with one step changed by the caller.

    ``message``: the cancellation message (K-2: none); ``drain``: run the loop
    until the cancelled tasks are done (K-3); ``report``: hand their errors to
    the loop's exception handler (K-5).
    """
    leftovers = list(asyncio.all_tasks(loop))
    if not leftovers:
        return
    for task in leftovers:
        task.cancel(message)
    if not drain:
        return
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    if not report:
        return
    for task in leftovers:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": SHUTDOWN_REPORT_MESSAGE, "exception": task.exception(), "task": task}
            )


class _LeftoverMutant(reference.Runner):
    """Shuts down as the reference does, with the leftover cancellation replaced by ``_cancel``."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        raise NotImplementedError

    def _shut_down(self, loop: asyncio.AbstractEventLoop) -> None:
        self._cancel(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(_shutdown_default_executor(loop, self._behaviour))


class NoCancelOnClose(_LeftoverMutant):
    """K-1 broken: ``close()`` does not cancel the tasks main left behind."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        return None


class CancelsLeftoversWithMessage(_LeftoverMutant):
    """K-2 broken: leftover tasks are cancelled with a message ("Runner is closing") instead of none."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        _cancel_leftovers(loop, message="Runner is closing")


class CancelsLeftoversWithoutDraining(_LeftoverMutant):
    """K-3 broken: leftover tasks are cancelled but the loop is not run until they are done."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        _cancel_leftovers(loop, drain=False)


class CancelsUntilNoTaskIsLeft(_LeftoverMutant):
    """K-4 broken: cancellation is repeated until no task is left, so tasks spawned during it are cancelled too."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        while asyncio.all_tasks(loop):
            _cancel_leftovers(loop)


class ShutdownErrorsNotReported(_LeftoverMutant):
    """K-5 broken: exceptions of leftover tasks are not reported to the loop's exception handler."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        _cancel_leftovers(loop, report=False)


class ShutdownSwallowsInterrupts(_LeftoverMutant):
    """K-6 broken: a KeyboardInterrupt or SystemExit raised by a leftover task while cancelled is swallowed."""

    def _cancel(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            _cancel_leftovers(loop)
        except (KeyboardInterrupt, SystemExit):
            pass


# ---------------------------------------------------------------- loops


class AsyncGensNotFinalisedLoop(asyncio.SelectorEventLoop):
    """C-2 broken (loop): ``shutdown_asyncgens()`` does nothing, so async generators are left to the collector."""

    async def shutdown_asyncgens(self) -> None:
        return None


class ExceptionHandlerIgnoredLoop(asyncio.SelectorEventLoop):
    """K-5 broken (loop): the loop reports errors with its default handler, ignoring the one set by user code."""

    def call_exception_handler(self, context: Dict[str, Any]) -> None:
        self.default_exception_handler(context)


class DebugFlagIgnoredLoop(asyncio.SelectorEventLoop):
    """L-5 broken (loop): only the constructor's own ``set_debug()`` takes effect; the runner's is ignored."""

    def set_debug(self, enabled: bool) -> None:
        if not hasattr(self, "_debug"):
            super().set_debug(enabled)


# ---------------------------------------------------------------- run functions


def _run_with(runner_class: Any, main: Any, debug: Optional[bool], loop_factory: Any) -> Any:
    """``reference.run`` (A-2's check, then A-3's with-block) with another runner class."""
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError(NESTED_ASYNCIO_RUN_MESSAGE)
    with runner_class(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)


def run_ignoring_debug(main: Any, *, debug: Optional[bool] = None, loop_factory: Any = None) -> Any:
    """A-1 broken: ``debug`` is accepted but never passed on to the runner."""
    return _run_with(reference.Runner, main, None, loop_factory)


def run_without_running_loop_check(main: Any, *, debug: Optional[bool] = None, loop_factory: Any = None) -> Any:
    """A-2 broken: no check for a running loop before the runner is made (Runner.run's check comes too late)."""
    with reference.Runner(debug=debug, loop_factory=loop_factory) as runner:
        return runner.run(main)


def run_not_closing_on_error(main: Any, *, debug: Optional[bool] = None, loop_factory: Any = None) -> Any:
    """A-3 broken: the with-block is unrolled by hand without ``finally``, so a failing main leaves the runner open."""
    if asyncio.events._get_running_loop() is not None:
        raise RuntimeError(NESTED_ASYNCIO_RUN_MESSAGE)
    runner = reference.Runner(debug=debug, loop_factory=loop_factory)
    runner.__enter__()
    result = runner.run(main)
    runner.__exit__(None, None, None)
    return result


def run_leaving_loop_current(main: Any, *, debug: Optional[bool] = None, loop_factory: Any = None) -> Any:
    """A-4 broken: the thread is left with the closed loop as its current loop instead of none."""
    return _run_with(ThreadLoopNotReset, main, debug, loop_factory)


# ---------------------------------------------------------------- the catalogue

CATALOGUE: Tuple[Mutant, ...] = (
    Mutant("PositionalArgumentsAccepted", "I-1"),
    Mutant("InitialisesAtConstruction", "I-2"),
    Mutant("MainThreadOnly", "I-4"),
    Mutant("ClosedRunnerReopens", "L-1"),
    Mutant("ReenteringMakesNewLoop", "L-2"),
    Mutant("DefaultLoopNotMadeCurrent", "L-3"),
    Mutant("FactoryLoopMadeCurrent", "L-4"),
    Mutant("DebugIgnoredForFactoryLoops", "L-5"),
    Mutant("DebugFlagIgnoredLoop", "L-5", kind="loop"),
    Mutant("ContextCopiedAtConstruction", "L-6"),
    Mutant("ReadyBeforeTheLoopExists", "L-7"),
    Mutant("EnterReturnsNone", "E-1"),
    Mutant("NestedWithOnlyOutermostCloses", "E-2"),
    Mutant("ExitSuppressesExceptions", "E-3"),
    Mutant("CloseBeforeUseCloses", "C-1"),
    Mutant("AsyncGensFinalisedBeforeLeftovers", "C-2"),
    Mutant("LoopLeftOpen", "C-2"),
    Mutant("ThreadLoopNotReset", "C-2"),
    Mutant("AsyncGensNotFinalisedLoop", "C-2", kind="loop"),
    Mutant("ExecutorShutdownNotAwaited", "C-3"),
    Mutant("CloseSkipsCleanupOnError", "C-4"),
    Mutant("CloseRefusedInsideItsLoop", "C-6"),
    Mutant("GetLoopDoesNotInitialise", "G-1"),
    Mutant("TypeCheckedAfterInitialising", "R-1", versions=((3, 11), (3, 12), (3, 13))),
    Mutant("NoRunningLoopCheck", "R-2"),
    Mutant("ClosedRunClosesCoroutine", "R-3"),
    Mutant("EmptyContextReplacedByRunnerContext", "R-4"),
    Mutant("MainTaskInCallersContext", "R-5"),
    Mutant("SigintHandlerNeverInstalled", "R-6"),
    Mutant("SigintHandlerReplacesCustomHandler", "R-6"),
    Mutant("SigintHandlerInstalledBeforeMainTask", "R-7"),
    Mutant("SigintCountNotReset", "R-8"),
    Mutant("MainWrapperDropsResult", "R-9"),
    Mutant("SigintEndsInCancelledError", "R-10"),
    Mutant("SigintWithoutUncancelIsKeyboardInterrupt", "R-10"),
    Mutant("SigintNotRestored", "R-11"),
    Mutant("DefaultHandlerRestoredOverUsers", "R-11"),
    Mutant("MainExceptionReraisedAsCopy", "R-12"),
    Mutant("RunCancelsPendingMain", "R-12"),
    Mutant("RunRestartsStoppedLoop", "R-13"),
    Mutant("AwaitedCoroutineRefused", "R-14"),
    Mutant("NewLoopWhenTheUserClosedIt", "R-15"),
    Mutant("SigintCancelsWithMessage", "S-1"),
    Mutant("EverySigintCancels", "S-2"),
    Mutant("InterruptOverridesMainResult", "S-3"),
    Mutant("SigintUncancelsAtOnce", "S-4"),
    Mutant("CloseIgnoresSigint", "S-5"),
    Mutant("NoCancelOnClose", "K-1"),
    Mutant("CancelsLeftoversWithMessage", "K-2"),
    Mutant("CancelsLeftoversWithoutDraining", "K-3"),
    Mutant("CancelsUntilNoTaskIsLeft", "K-4"),
    Mutant("ShutdownErrorsNotReported", "K-5"),
    Mutant("ExceptionHandlerIgnoredLoop", "K-5", kind="loop"),
    Mutant("ShutdownSwallowsInterrupts", "K-6"),
    Mutant("run_ignoring_debug", "A-1", kind="run"),
    Mutant("run_without_running_loop_check", "A-2", kind="run"),
    Mutant("run_not_closing_on_error", "A-3", kind="run"),
    Mutant("run_leaving_loop_current", "A-4", kind="run"),
)

#: Clauses of docs/spec.md without a mutant, and why.
NOT_MUTATED: Dict[str, str] = {
    "I-3": "subclassing is not observable from a scenario",
    "C-5": "not observable: the kept context and interrupt count have no effect once closed (spec)",
    "R-16": "interpreter behaviour (repr calls by the signal module), not the runner's",
    "R14-1": "documentation only",
    "R14-2": "3.14 only: its mutant belongs with a 3.14 interpreter (R-1's mutant covers the order on 3.11-3.13)",
    "R14-3": "3.14 only: its mutant belongs with a 3.14 interpreter",
    "R14-4": "the same clauses as R-4..R-16, which have their mutants",
    "R14-5": "3.14 only: its mutant belongs with a 3.14 interpreter",
    "S-6": "_thread.interrupt_main() runs the very handler a SIGINT runs, with the same arguments: a runner "
    "cannot treat the two differently, so no mistake breaks S-6 without breaking S-1 or S-2 (their mutants)",
    "A-5": "documentation only",
}


def by_name(name: str) -> Mutant:
    """The catalogue entry called ``name`` (``KeyError`` if there is none)."""
    for mutant in CATALOGUE:
        if mutant.name == name:
            return mutant
    raise KeyError(name)
