"""Clause by clause: the reference Runner does what CPython's Runner does.

Each test is named after the clause it checks (IDs as in docs/spec.md) and,
where the clause is about behaviour both share, runs against both
``asyncio.Runner`` / ``asyncio.run`` (the running interpreter's) and
``reference.Runner`` / ``reference.run`` (imitating the same version by
default). Expectations that differ between CPython releases are keyed on
``VERSION``, which for 3.11-3.14 is the interpreter's own ``(major, minor)``.

The ``version=`` table and ``cancel_order=`` exist only in the reference; their
tests (``test_version_*``, ``test_cancel_order_*``) run against it alone.

Tests that send SIGINT do it with ``signal.raise_signal`` from inside a
coroutine (one wake-up test signals the main thread from a timer thread), after
the autouse fixture has made ``signal.default_int_handler`` the SIGINT handler.
"""

from __future__ import annotations

import _thread
import asyncio
import asyncio.constants
import asyncio.events
import contextlib
import contextvars
import gc
import inspect
import itertools
import logging
import re
import signal
import sys
import threading
import time
import types
import warnings

import pytest

import reference

PY = (sys.version_info[0], sys.version_info[1])
VERSION = reference.default_version()
HAS_CPYTHON_RUNNER = hasattr(asyncio, "Runner")
SIGINT = signal.SIGINT

needs_cpython_runner = pytest.mark.skipif(not HAS_CPYTHON_RUNNER, reason="asyncio.Runner is new in 3.11")
needs_311 = pytest.mark.skipif(PY < (3, 11), reason="needs Task.cancelling/uncancel, TaskGroup or timeout (3.11+)")

RUNNERS = [
    pytest.param(getattr(asyncio, "Runner", None), id="asyncio", marks=needs_cpython_runner),
    pytest.param(reference.Runner, id="reference"),
]
RUN_FUNCTIONS = [
    pytest.param(asyncio.run, id="asyncio", marks=needs_cpython_runner),
    pytest.param(reference.run, id="reference"),
]

VAR: contextvars.ContextVar = contextvars.ContextVar("VAR", default="unset")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def default_sigint_handler():
    """Every test starts with Python's default SIGINT handler (R-6 needs it).

    A process started in the background inherits SIGINT ignored, and then
    neither runner would install its handler.
    """
    previous = signal.getsignal(SIGINT)
    signal.signal(SIGINT, signal.default_int_handler)
    yield
    signal.signal(SIGINT, previous)


@pytest.fixture(params=RUNNERS)
def runner_cls(request):
    return request.param


@pytest.fixture(params=RUN_FUNCTIONS)
def run_fn(request):
    return request.param


class LoopCalls:
    """What went through ``asyncio.events.new_event_loop`` / ``set_event_loop``."""

    def __init__(self):
        self.new = []
        self.set = []


@pytest.fixture
def loop_calls(monkeypatch):
    """Record (and still perform) the policy calls both runners make (L-3)."""
    calls = LoopCalls()
    real_new = asyncio.events.new_event_loop
    real_set = asyncio.events.set_event_loop

    def new_event_loop():
        loop = real_new()
        calls.new.append(loop)
        return loop

    def set_event_loop(loop):
        calls.set.append(loop)
        real_set(loop)

    monkeypatch.setattr(asyncio.events, "new_event_loop", new_event_loop)
    monkeypatch.setattr(asyncio.events, "set_event_loop", set_event_loop)
    return calls


class RecordingLoop(asyncio.SelectorEventLoop):
    """A real loop that logs the shutdown calls a runner makes on it (C-2, C-3, K-1)."""

    def __init__(self, log):
        super().__init__()
        self.log = log
        self.executor_args = []

    def run_until_complete(self, future):
        self.log.append("run_until_complete")
        return super().run_until_complete(future)

    async def shutdown_asyncgens(self):
        self.log.append("shutdown_asyncgens")
        await super().shutdown_asyncgens()

    def shutdown_default_executor(self, *args):
        # Accepts a timeout whatever the interpreter, and records whether one came.
        self.log.append("shutdown_default_executor")
        self.executor_args.append(args)
        return super().shutdown_default_executor(*args[: 1 if PY >= (3, 12) else 0])

    def close(self):
        self.log.append("close")
        super().close()


@pytest.fixture
def recording(monkeypatch):
    """Make ``asyncio.events.new_event_loop`` return ``RecordingLoop``s sharing one log."""
    log = []
    loops = []
    real_set = asyncio.events.set_event_loop

    def new_event_loop():
        loop = RecordingLoop(log)
        loops.append(loop)
        return loop

    def set_event_loop(loop):
        log.append(("set_event_loop", loop))
        real_set(loop)

    monkeypatch.setattr(asyncio.events, "new_event_loop", new_event_loop)
    monkeypatch.setattr(asyncio.events, "set_event_loop", set_event_loop)
    return types.SimpleNamespace(log=log, loops=loops)


# ---------------------------------------------------------------- helpers


async def answer():
    return 42


async def noop():
    pass


async def read_var():
    return VAR.get()


async def current_sigint_handler():
    return signal.getsignal(SIGINT)


def in_fresh_context(func, *args):
    """Run ``func`` in a copy of the current context, so VAR writes don't leak."""
    return contextvars.copy_context().run(func, *args)


def unstarted(coro):
    return inspect.getcoroutinestate(coro) == inspect.CORO_CREATED


@contextlib.contextmanager
def no_keyboard_interrupt():
    """Where a SIGINT must *not* surface as KeyboardInterrupt, fail the test
    instead of letting the exception abort the whole pytest session."""
    try:
        yield
    except KeyboardInterrupt as exc:
        pytest.fail(f"unexpected KeyboardInterrupt {exc!r}")


# ================================================================ I: construction


def test_I1_arguments_are_keyword_only(runner_cls):
    with pytest.raises(TypeError):
        runner_cls(True)
    with pytest.raises(TypeError):
        runner_cls(None, asyncio.new_event_loop)


def test_I2_constructor_is_inert(runner_cls, loop_calls):
    factory_calls = []
    handler_before = signal.getsignal(SIGINT)
    runner_cls(debug="not validated", loop_factory=object())
    runner_cls(loop_factory=lambda: factory_calls.append(1))
    runner_cls()
    assert loop_calls.new == []
    assert loop_calls.set == []
    assert factory_calls == []
    assert signal.getsignal(SIGINT) is handler_before


def test_I3_subclassing_works(runner_cls):
    class Subclass(runner_cls):
        pass

    with Subclass() as runner:
        assert runner.run(answer()) == 42


def test_I4_usable_from_any_thread_without_sigint_handling(runner_cls):
    runner = runner_cls()  # created in the main thread...
    seen = {}

    def worker():
        try:
            seen["handler"] = runner.run(current_sigint_handler())  # ...used in another
            seen["answer"] = runner.run(answer())
        except BaseException as exc:  # pragma: no cover - reported below
            seen["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    runner.close()  # ...and closed in the main thread again
    assert "error" not in seen, seen
    assert seen["handler"] is signal.default_int_handler  # untouched off the main thread
    assert seen["answer"] == 42


# ================================================================ L: lazy initialisation


@pytest.mark.parametrize("first_use", ["get_loop", "enter", "run"])
def test_L1_closed_runner_raises_runner_is_closed(runner_cls, first_use):
    runner = runner_cls()
    runner.get_loop()
    runner.close()
    coro = answer()
    calls = {"get_loop": runner.get_loop, "enter": runner.__enter__, "run": lambda: runner.run(coro)}
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        calls[first_use]()
    coro.close()


def test_L2_initialisation_happens_once(runner_cls):
    made = []

    def factory():
        made.append(asyncio.new_event_loop())
        return made[-1]

    with runner_cls(loop_factory=factory) as runner:
        loop = runner.get_loop()
        assert runner.get_loop() is loop
        with runner:
            assert runner.run(answer()) == 42
    assert made == [loop]


def test_L3_default_loop_is_made_current_once(runner_cls, loop_calls):
    runner = runner_cls()
    assert runner.run(answer()) == 42
    runner.run(noop())
    assert len(loop_calls.new) == 1
    loop = loop_calls.new[0]
    assert runner.get_loop() is loop
    assert loop_calls.set == [loop]
    runner.close()
    assert loop_calls.set == [loop, None]
    assert loop.is_closed()


def test_L3_L7_loop_made_after_failed_init_is_not_made_current(runner_cls, monkeypatch):
    # L-7: set_debug failing leaves the runner fresh; the second attempt makes
    # a new loop, and L-3's once-only flag means it is *not* made current.
    made, current = [], []

    class DebugFailsOnceLoop(asyncio.SelectorEventLoop):
        refuse_debug = False

        def set_debug(self, enabled):
            if self.refuse_debug:
                raise OSError("set_debug failed")
            super().set_debug(enabled)

    def new_event_loop():
        made.append(DebugFailsOnceLoop())
        made[-1].refuse_debug = len(made) == 1
        return made[-1]

    real_set = asyncio.events.set_event_loop
    monkeypatch.setattr(asyncio.events, "new_event_loop", new_event_loop)
    monkeypatch.setattr(asyncio.events, "set_event_loop", lambda loop: (current.append(loop), real_set(loop)))

    runner = runner_cls(debug=True)
    with pytest.raises(OSError, match="set_debug failed"):
        runner.get_loop()
    runner.close()  # C-1: still fresh, so nothing happens
    assert not made[0].is_closed()
    assert runner.get_loop() is made[1]
    assert current == [made[0]]
    runner.close()
    assert made[1].is_closed()
    assert not made[0].is_closed()  # abandoned: close() never closes it
    assert current == [made[0], None]
    made[0].close()


def test_L4_loop_factory_is_called_without_arguments_and_not_made_current(runner_cls, loop_calls):
    made = []

    def factory(*args, **kwargs):
        assert (args, kwargs) == ((), {})
        made.append(asyncio.new_event_loop())
        return made[-1]

    async def running_loop():
        return asyncio.get_running_loop()

    with runner_cls(loop_factory=factory) as runner:
        assert runner.run(running_loop()) is made[0]
    assert len(made) == 1
    assert made[0].is_closed()
    assert loop_calls.new == []
    assert loop_calls.set == []


@pytest.mark.parametrize("use_factory", [False, True], ids=["policy", "factory"])
@pytest.mark.parametrize("loop_default", [False, True])
@pytest.mark.parametrize("debug", [None, False, True])
def test_L5_debug_is_applied_unless_none(runner_cls, debug, loop_default, use_factory, monkeypatch):
    def make_loop():
        loop = asyncio.SelectorEventLoop()
        loop.set_debug(loop_default)
        return loop

    if use_factory:
        runner = runner_cls(debug=debug, loop_factory=make_loop)
    else:
        monkeypatch.setattr(asyncio.events, "new_event_loop", make_loop)
        runner = runner_cls(debug=debug)
    with runner:
        assert runner.get_loop().get_debug() is (loop_default if debug is None else debug)


@pytest.mark.parametrize("first_use", ["get_loop", "enter", "run"])
def test_L6_context_is_copied_at_first_initialisation(runner_cls, first_use):
    def scenario():
        runner = runner_cls()
        VAR.set("before first use")
        if first_use == "get_loop":
            runner.get_loop()
        elif first_use == "enter":
            runner.__enter__()
        else:
            assert runner.run(read_var()) == "before first use"
        VAR.set("after first use")
        seen = runner.run(read_var())
        runner.close()
        return seen

    assert in_fresh_context(scenario) == "before first use"


def test_L6_constructing_does_not_copy_the_context(runner_cls):
    def scenario():
        VAR.set("at construction")
        runner = runner_cls()
        VAR.set("at first use")
        with runner:
            return runner.run(read_var())

    assert in_fresh_context(scenario) == "at first use"


def test_L7_failing_loop_factory_leaves_runner_fresh_and_is_retried(runner_cls):
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no loop today")
        return asyncio.new_event_loop()

    runner = runner_cls(loop_factory=factory)
    with pytest.raises(OSError, match="no loop today"):
        runner.get_loop()
    runner.close()  # C-1: no-op, the runner is still fresh
    assert runner.run(answer()) == 42
    assert len(calls) == 2
    runner.close()


# ================================================================ E: with-block


def test_E1_enter_returns_the_runner_and_refuses_when_closed(runner_cls):
    ran = []

    async def body():
        ran.append(True)

    runner = runner_cls()
    with runner as entered:
        assert entered is runner
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        with runner:
            ran.append("body")  # never reached
    assert ran == []


def test_E2_nested_with_inner_exit_closes_outer_is_noop(runner_cls):
    runner = runner_cls()
    with runner:
        with runner:
            loop = runner.get_loop()
            assert runner.run(answer()) == 42
        assert loop.is_closed()
        with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
            runner.get_loop()
    # The outer exit was a no-op (no exception).


def test_E3_exit_returns_none_and_never_suppresses(runner_cls):
    runner = runner_cls()
    runner.get_loop()
    assert runner.__exit__(ValueError, ValueError("x"), None) is None
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()
    with pytest.raises(ValueError, match="from the body"):
        with runner_cls() as runner:
            raise ValueError("from the body")


def test_E3_close_error_replaces_body_error(runner_cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # C-4: shutdown_asyncgens never awaited
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$") as info:
            with runner_cls() as runner:
                runner.get_loop().close()
                raise ValueError("from the body")
        assert isinstance(info.value.__context__, ValueError)
        del info
        gc.collect()


# ================================================================ C: close


def test_C1_close_before_first_use_keeps_runner_usable(runner_cls, loop_calls):
    runner = runner_cls()
    runner.close()
    runner.close()
    assert loop_calls.new == []
    assert runner.run(answer()) == 42
    runner.close()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()


def test_C1_second_close_is_a_noop(runner_cls, loop_calls):
    runner = runner_cls()
    loop = runner.get_loop()
    runner.close()
    runner.close()
    assert loop.is_closed()
    assert loop_calls.set == [loop, None]


def test_C2_close_sequence(runner_cls, recording):
    events = recording.log
    keep = []

    async def leftover():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("leftover cancelled")
            raise

    async def agen():
        try:
            yield 1
            await asyncio.sleep(3600)
        finally:
            events.append("async generator finalised")

    async def main():
        keep.append(asyncio.ensure_future(leftover()))
        generator = agen()
        keep.append(generator)  # keep it alive until shutdown_asyncgens
        await generator.__anext__()

    runner = runner_cls()
    runner.run(main())
    loop = recording.loops[0]
    del events[:]
    runner.close()
    assert [e for e in events if e != "run_until_complete"] == [
        "leftover cancelled",
        "shutdown_asyncgens",
        "async generator finalised",
        "shutdown_default_executor",
        ("set_event_loop", None),
        "close",
    ]
    assert loop.is_closed()


def test_C3_executor_shutdown_timeout(runner_cls, recording, monkeypatch):
    monkeypatch.setattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", 7, raising=False)
    with runner_cls() as runner:
        runner.run(noop())
    expected = () if VERSION == (3, 11) else (7,)  # read at close() time
    assert recording.loops[0].executor_args == [expected]


@needs_cpython_runner
def test_C3_timeout_effect_matches_cpython(monkeypatch):
    # What the timeout does is the loop's business (none on 3.11/3.12.1; a
    # warning and an early return from 3.13.0a5), but both runners must get it.
    monkeypatch.setattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", 0.2, raising=False)

    async def main():
        asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.6)
        await asyncio.sleep(0)

    outcome = {}
    for key, cls in (("asyncio", asyncio.Runner), ("reference", reference.Runner)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with cls() as runner:
                runner.run(main())
        outcome[key] = sorted(str(w.message) for w in caught if "did not finishing joining" in str(w.message))
    assert outcome["reference"] == outcome["asyncio"]
    if PY >= (3, 13):
        assert outcome["asyncio"] == ["The executor did not finishing joining its threads within 0.2 seconds."]


def test_C4_leftover_raising_systemexit_still_closes(runner_cls, recording):
    # Also K-6: SystemExit from a cancelled leftover escapes close().
    state = {}

    async def leftover():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise SystemExit(5)  # noqa: B904 - the CancelledError context is part of the scenario

    async def main():
        state["leftover"] = asyncio.ensure_future(leftover())
        await asyncio.sleep(0)

    runner = runner_cls()
    runner.run(main())
    loop = recording.loops[0]
    del recording.log[:]
    with pytest.raises(SystemExit) as info:
        runner.close()
    assert info.value.code == 5
    assert [e for e in recording.log if e != "run_until_complete"] == [("set_event_loop", None), "close"]
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()
    assert state["leftover"].exception() is info.value


def test_C4_user_closed_loop_makes_close_raise_but_runner_is_closed(runner_cls, loop_calls):
    runner = runner_cls()
    loop = runner.get_loop()
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$") as info:
            runner.close()
        del info
        gc.collect()
    assert any("shutdown_asyncgens' was never awaited" in str(w.message) for w in caught), caught
    assert loop_calls.set == [loop, None]
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()


def test_C6_close_inside_running_loop(runner_cls, loop_calls):
    runner = runner_cls()
    seen = {}

    async def main():
        try:
            runner.close()
        except RuntimeError as exc:
            seen["error"] = str(exc)
            seen["context"] = str(exc.__context__)
        await asyncio.sleep(0)  # close() cancelled this very task
        seen["survived"] = True

    with pytest.raises(asyncio.CancelledError):
        runner.run(main())
    assert seen == {"error": "Cannot close a running event loop", "context": "This event loop is already running"}
    loop = loop_calls.new[0]
    assert runner.get_loop() is loop  # still initialised, not "Runner is closed"
    assert not loop.is_closed()
    assert loop_calls.set == [loop, None]  # but the thread's loop was reset
    runner.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()


# ================================================================ G: get_loop


def test_G1_get_loop_creates_lazily_and_refuses_after_close(runner_cls, loop_calls):
    runner = runner_cls()
    assert loop_calls.new == []
    loop = runner.get_loop()
    assert loop_calls.new == [loop]
    assert not loop.is_running() and not loop.is_closed()
    assert runner.get_loop() is loop
    runner.close()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()


# ================================================================ R: run


class Awaitable:
    def __await__(self):
        yield from asyncio.sleep(0).__await__()
        return "awaited"


def test_R1_non_coroutine_rejected_before_anything_else(runner_cls, loop_calls):
    for obj in (123, None, lambda: None, Awaitable()):
        runner = runner_cls()
        if VERSION < (3, 14):
            with pytest.raises(ValueError, match=re.escape(f"a coroutine was expected, got {obj!r}")):
                runner.run(obj)
            assert loop_calls.new == []  # nothing happened: no loop, no current loop
            assert loop_calls.set == []
        elif isinstance(obj, Awaitable):
            assert runner.run(obj) == "awaited"
        else:
            with pytest.raises(TypeError, match="an awaitable is required"):
                runner.run(obj)
        runner.close()


def test_R1_futures_are_not_coroutines(runner_cls):
    with runner_cls() as runner:
        future = runner.get_loop().create_future()
        runner.get_loop().call_soon(future.set_result, "done")
        if VERSION < (3, 14):
            with pytest.raises(ValueError, match="a coroutine was expected"):
                runner.run(future)
        else:
            assert runner.run(future) == "done"


def test_R1_plain_generator_only_in_311(runner_cls):
    with runner_cls() as runner:
        if VERSION == (3, 11):
            assert runner.run(x for x in []) is None
        elif VERSION < (3, 14):
            with pytest.raises(ValueError, match="a coroutine was expected"):
                runner.run(x for x in [])
        else:
            with pytest.raises(TypeError, match="an awaitable is required"):
                runner.run(x for x in [])


def test_R1_type_check_precedes_running_loop_check(runner_cls):
    seen = {}

    async def main():
        try:
            runner.run(1)
        except Exception as exc:
            seen["error"] = type(exc)

    with runner_cls() as runner:
        runner.run(main())
    assert seen["error"] is (ValueError if VERSION < (3, 14) else RuntimeError)


def test_R2_run_inside_running_loop_leaves_coroutine_unawaited(runner_cls):
    seen = {}

    async def main():
        inner = answer()
        try:
            runner.run(inner)
        except RuntimeError as exc:
            seen["message"] = str(exc)
        seen["unstarted"] = unstarted(inner)
        inner.close()

    with runner_cls() as runner:
        runner.run(main())
    assert seen == {"message": "Runner.run() cannot be called from a running event loop", "unstarted": True}


def test_R2_unawaited_coroutine_warns(runner_cls):
    async def main():
        runner.run(noop())

    with runner_cls() as runner:
        with pytest.warns(RuntimeWarning, match="coroutine .+ was never awaited"):
            with pytest.raises(RuntimeError, match=re.escape("Runner.run() cannot be called from a running")):
                runner.run(main())
            gc.collect()


def test_R3_run_on_closed_runner(runner_cls):
    runner = runner_cls()
    runner.close()  # C-1: still fresh
    runner.get_loop()
    runner.close()
    coro = answer()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.run(coro)
    assert unstarted(coro)
    coro.close()
    # R-1 / R14-2: which comes first, the type check or "Runner is closed"?
    if VERSION < (3, 14):
        with pytest.raises(ValueError, match="a coroutine was expected"):
            runner.run(123)
    else:
        with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
            runner.run(123)


@needs_311
def test_R4_runner_context_is_shared_by_runs(runner_cls):
    async def write(value):
        VAR.set(value)

    def scenario():
        with runner_cls() as runner:
            runner.run(write("first run"))
            seen = runner.run(read_var())
        return seen, VAR.get()

    assert in_fresh_context(scenario) == ("first run", "unset")


@needs_311
def test_R4_explicit_context_is_used_as_is(runner_cls):
    async def write(value):
        VAR.set(value)
        return VAR.get()

    explicit = contextvars.Context()
    with runner_cls() as runner:
        assert runner.run(write("explicit"), context=explicit) == "explicit"
        assert runner.run(read_var()) == "unset"  # the runner's own context is untouched
    assert explicit[VAR] == "explicit"
    empty = contextvars.Context()  # an empty Context is falsy, and still used as is
    with runner_cls() as runner:
        runner.run(write("empty"), context=empty)
    assert empty[VAR] == "empty"


def test_R4_entered_context_never_starts_the_main_task(runner_cls, caplog):
    # A Context that is currently entered cannot be entered again by the task:
    # its first step fails in the loop, and run() would wait forever. The loop
    # is stopped from outside to observe that.
    context = contextvars.copy_context()
    started = []

    async def main():
        started.append(True)

    runner = runner_cls()
    loop = runner.get_loop()

    def inside_context():
        loop.call_later(0.1, loop.stop)
        with pytest.raises(RuntimeError, match=re.escape("Event loop stopped before Future completed.")):
            runner.run(main(), context=context)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        context.run(inside_context)
    assert started == []
    assert "cannot enter context" in caplog.text
    never_started = asyncio.all_tasks(loop)
    loop.call_later(0.1, loop.stop)  # close() would hang too (K-3)
    with pytest.raises(RuntimeError, match=re.escape("Event loop stopped before Future completed.")):
        runner.close()
    assert loop.is_closed()
    assert len(never_started) == 1
    for task in never_started:  # the task can never finish; don't let it warn later
        task.get_coro().close()


@needs_311
def test_R5_task_factory_receives_context_keyword(runner_cls):
    received = []

    def factory(loop, coro, **kwargs):
        received.append(kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    def make_loop():
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        return loop

    explicit = contextvars.copy_context()
    with runner_cls(loop_factory=make_loop) as runner:
        runner.run(noop())
        runner.run(noop())
        runner.run(noop(), context=explicit)
    # (close() creates tasks of its own afterwards, with no context.)
    assert [sorted(kwargs) for kwargs in received[:3]] == [["context"]] * 3
    assert received[0]["context"] is received[1]["context"]  # the runner's own
    assert received[0]["context"] is not explicit
    assert received[2]["context"] is explicit


@needs_cpython_runner
def test_R5_main_task_name_under_custom_factory_matches_cpython():
    def factory(loop, coro, **kwargs):
        return asyncio.Task(coro, loop=loop, **kwargs)

    def make_loop():
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        return loop

    async def name_of_main():
        return asyncio.current_task().get_name()

    names = {}
    for key, cls in (("asyncio", asyncio.Runner), ("reference", reference.Runner)):
        with cls(loop_factory=make_loop) as runner:
            names[key] = re.sub(r"\d+", "N", runner.run(name_of_main()))
    assert names["reference"] == names["asyncio"]
    if sys.version_info[:3] == (3, 13, 0):
        assert names["asyncio"] == "None"  # gh-130033


def test_R6_handler_installed_over_default_and_restored(runner_cls):
    with runner_cls() as runner:
        during = runner.run(current_sigint_handler())
        assert signal.getsignal(SIGINT) is signal.default_int_handler
    assert callable(during)
    assert during is not signal.default_int_handler


def _custom_handler(signum, frame):
    pass


@pytest.mark.parametrize("other", [_custom_handler, signal.SIG_IGN, signal.SIG_DFL], ids=["custom", "ign", "dfl"])
def test_R6_other_handlers_are_left_alone(runner_cls, other):
    signal.signal(SIGINT, other)
    with runner_cls() as runner:
        assert runner.run(current_sigint_handler()) is other
    assert signal.getsignal(SIGINT) is other


def test_R6_signal_install_failure_is_tolerated(runner_cls, monkeypatch):
    def refuse(signum, handler):
        raise ValueError("signal only works in main thread of the main interpreter")

    monkeypatch.setattr(signal, "signal", refuse)  # gh-91880
    with runner_cls() as runner:
        assert runner.run(current_sigint_handler()) is signal.default_int_handler


def test_R7_handler_installed_after_task_creation(runner_cls):
    at_creation = []

    def factory(loop, coro, **kwargs):
        at_creation.append(signal.getsignal(SIGINT))
        return asyncio.Task(coro, loop=loop, **kwargs)

    def make_loop():
        loop = asyncio.new_event_loop()
        loop.set_task_factory(factory)
        return loop

    with runner_cls(loop_factory=make_loop) as runner:
        during = runner.run(current_sigint_handler())
    assert at_creation[0] is signal.default_int_handler  # (later ones: close()'s own tasks)
    assert during is not signal.default_int_handler


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="eager tasks are new in 3.12")
def test_R7_eager_factory_does_not_start_main_task_early(runner_cls):
    # A task starts eagerly only in a *running* loop, and run() creates the main
    # task before the loop runs: so even under eager_task_factory the main
    # task's first step sees the runner's handler (observed on 3.12.1, 3.13.0).
    done_after_creation = []

    def make_loop():
        loop = asyncio.new_event_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        real_create_task = loop.create_task

        def create_task(*args, **kwargs):
            task = real_create_task(*args, **kwargs)
            done_after_creation.append(task.done())
            return task

        loop.create_task = create_task
        return loop

    async def main():
        return signal.getsignal(SIGINT)

    with runner_cls(loop_factory=make_loop) as runner:
        first_step = runner.run(main())
    assert done_after_creation[0] is False
    assert first_step is not signal.default_int_handler


async def interrupted_then_swallowed():
    signal.raise_signal(SIGINT)
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        return "swallowed"
    return "not cancelled"


def test_R8_interrupt_count_is_reset_every_run(runner_cls):
    # Also S-3 (B): a main task that swallows the cancellation returns normally.
    with runner_cls() as runner, no_keyboard_interrupt():
        assert runner.run(interrupted_then_swallowed()) == "swallowed"
        assert runner.run(interrupted_then_swallowed()) == "swallowed"


def test_R9_result_object_is_returned_itself(runner_cls):
    result = object()

    async def main():
        return result

    with runner_cls() as runner:
        assert runner.run(main()) is result


@needs_311
def test_R10_sigint_becomes_fresh_keyboard_interrupt(runner_cls):
    # Also S-1: the main task is cancelled without a message.
    state = {}

    async def main():
        state["task"] = asyncio.current_task()
        signal.raise_signal(SIGINT)
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError as exc:
            state["args"] = exc.args
            raise

    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt) as info:
            runner.run(main())
    error = info.value
    assert error.args == ()
    assert error.__cause__ is None
    assert isinstance(error.__context__, asyncio.CancelledError)
    assert error.__suppress_context__ is False
    assert state["args"] == ()
    assert state["task"].cancelled()
    assert state["task"].cancelling() == 0


def test_R10_cancellation_without_sigint_is_reraised_unchanged(runner_cls):
    async def main():
        asyncio.current_task().cancel("selfmsg")
        await asyncio.sleep(0)

    with runner_cls() as runner:
        with pytest.raises(asyncio.CancelledError) as info:
            runner.run(main())
    assert info.value.args == ("selfmsg",)


class TaskWithoutUncancel:
    """A duck-typed task, as a custom task factory may make (gh-95097)."""

    def __init__(self, loop, coro, **kwargs):
        self._inner = asyncio.Task(coro, loop=loop, **kwargs)

    @property
    def _asyncio_future_blocking(self):
        return self._inner._asyncio_future_blocking

    def __getattr__(self, name):
        if name in ("uncancel", "cancelling"):
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_R10_task_without_uncancel_gives_cancelled_error(runner_cls):
    def make_loop():
        loop = asyncio.new_event_loop()
        loop.set_task_factory(TaskWithoutUncancel)
        return loop

    async def main():
        signal.raise_signal(SIGINT)
        await asyncio.sleep(1)

    with runner_cls(loop_factory=make_loop) as runner, no_keyboard_interrupt():
        with pytest.raises(asyncio.CancelledError):
            runner.run(main())


def test_R11_handler_restored_only_if_still_ours(runner_cls):
    async def replace_handler():
        signal.signal(SIGINT, _custom_handler)

    async def fail():
        raise ValueError("boom")

    with runner_cls() as runner:
        with pytest.raises(ValueError):
            runner.run(fail())
        assert signal.getsignal(SIGINT) is signal.default_int_handler
        runner.run(replace_handler())
        assert signal.getsignal(SIGINT) is _custom_handler


@pytest.mark.parametrize(
    "error",
    [ValueError("v"), SystemExit(3), KeyboardInterrupt("user"), asyncio.CancelledError("c")],
    ids=lambda e: type(e).__name__,
)
def test_R12_main_task_exception_propagates_as_is(runner_cls, error):
    async def main():
        await asyncio.sleep(0)
        raise error

    with runner_cls() as runner:
        with pytest.raises(type(error)) as info:
            runner.run(main())
    assert info.value is error


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_R12_child_base_exception_escapes_run_while_main_pending(runner_cls, kind):
    state = {}

    async def child():
        raise kind("child")

    async def main():
        state["main"] = asyncio.current_task()
        state["child"] = asyncio.ensure_future(child())
        await asyncio.sleep(3600)

    runner = runner_cls()
    with pytest.raises(kind) as info:
        runner.run(main())
    assert info.value.args == ("child",)
    assert not state["main"].done()
    runner.close()
    assert state["main"].cancelled()
    assert state["child"].exception() is info.value


def test_R13_loop_stop_fails_run_and_leaves_main_pending(runner_cls):
    state = {}

    async def main():
        state["main"] = asyncio.current_task()
        asyncio.get_running_loop().stop()
        await asyncio.sleep(3600)

    runner = runner_cls()
    with pytest.raises(RuntimeError, match=re.escape("Event loop stopped before Future completed.")):
        runner.run(main())
    assert not state["main"].done()
    runner.close()
    assert state["main"].cancelled()


def test_R14_awaited_coroutine_cannot_run_again(runner_cls):
    coro = answer()
    with runner_cls() as runner:
        assert runner.run(coro) == 42
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            runner.run(coro)


def test_R15_user_closed_loop_is_not_runner_closed(runner_cls):
    runner = runner_cls()
    loop = runner.get_loop()
    loop.close()
    coro = answer()
    with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
        runner.run(coro)
    assert unstarted(coro)
    coro.close()
    assert runner.get_loop() is loop  # still initialised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(RuntimeError, match=r"^Event loop is closed$"):
            runner.close()
        gc.collect()


@needs_cpython_runner
def test_R16_result_repr_calls_match_cpython():
    class Result:
        def __init__(self):
            self.repr_count = 0

        def __repr__(self):
            self.repr_count += 1
            return "<Result>"

    async def main():
        return Result()

    counts = {}
    for key, cls in (("asyncio", asyncio.Runner), ("reference", reference.Runner)):
        with cls() as runner:
            counts[key] = runner.run(main()).repr_count
    assert counts["reference"] == counts["asyncio"]
    known = {(3, 11, 7): 2, (3, 12, 1): 2, (3, 13, 0): 0}  # gh-112559
    if sys.version_info[:3] in known:
        assert counts["asyncio"] == known[sys.version_info[:3]]


# ================================================================ S: SIGINT


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
def test_S1_first_sigint_wakes_loop_blocked_in_select(runner_cls):
    main_thread = threading.get_ident()

    async def main():
        timer = threading.Timer(0.2, signal.pthread_kill, (main_thread, SIGINT))
        timer.start()
        try:
            await asyncio.sleep(5)
        finally:
            timer.join()

    started = time.monotonic()
    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())
    assert time.monotonic() - started < 2.5


def test_S2_second_sigint_raises_in_handler(runner_cls):
    state = {}

    async def child():
        signal.raise_signal(SIGINT)  # first: cancels main
        signal.raise_signal(SIGINT)  # second: KeyboardInterrupt right here

    async def main():
        state["main"] = asyncio.current_task()
        state["child"] = asyncio.ensure_future(child())
        await asyncio.sleep(3600)

    runner = runner_cls()
    with pytest.raises(KeyboardInterrupt) as info:
        runner.run(main())
    assert info.value.__context__ is None
    assert info.value.args == ()
    assert not state["main"].done()  # left pending...
    assert signal.getsignal(SIGINT) is signal.default_int_handler
    runner.close()
    assert state["main"].cancelled()  # ...and cancelled by close()
    assert state["child"].exception() is info.value


def test_S2_sigint_after_main_task_done_raises(runner_cls):
    state = {}

    async def child():
        signal.raise_signal(SIGINT)

    async def main():
        state["child"] = asyncio.ensure_future(child())
        return "done"

    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt) as info:
            runner.run(main())
    assert state["child"].exception() is info.value


def test_S3_replacing_the_cancellation_wins(runner_cls):
    async def main():
        signal.raise_signal(SIGINT)
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            raise ValueError("instead")  # noqa: B904 - S-3 checks the implicit __context__

    with runner_cls() as runner, no_keyboard_interrupt():
        with pytest.raises(ValueError, match="instead") as info:
            runner.run(main())
    assert isinstance(info.value.__context__, asyncio.CancelledError)


@needs_311
def test_S3_cancelled_by_someone_else_too_gives_cancelled_error(runner_cls):
    async def main():
        asyncio.current_task().cancel()
        signal.raise_signal(SIGINT)
        await asyncio.sleep(1)

    with runner_cls() as runner, no_keyboard_interrupt():
        with pytest.raises(asyncio.CancelledError):
            runner.run(main())


@needs_311
def test_S4_sigint_inside_timeout_is_keyboard_interrupt(runner_cls):
    async def main():
        async with asyncio.timeout(0.05):
            time.sleep(0.1)  # let the deadline pass too
            signal.raise_signal(SIGINT)
            await asyncio.sleep(1)

    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())


@needs_311
def test_S4_sigint_inside_taskgroup_cancels_children_first(runner_cls):
    cancelled = []

    async def child(name):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def main():
        async with asyncio.TaskGroup() as group:
            group.create_task(child("one"))
            group.create_task(child("two"))
            await asyncio.sleep(0)
            signal.raise_signal(SIGINT)
            await asyncio.sleep(3600)

    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())
        assert sorted(cancelled) == ["one", "two"]


def test_S5_sigint_during_close_escapes_close(runner_cls):
    state = {}

    async def leftover():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            signal.raise_signal(SIGINT)  # the default handler is back
            raise

    async def main():
        state["leftover"] = asyncio.ensure_future(leftover())
        await asyncio.sleep(0)

    runner = runner_cls()
    runner.run(main())
    loop = runner.get_loop()
    with pytest.raises(KeyboardInterrupt) as info:
        runner.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.get_loop()
    assert state["leftover"].exception() is info.value


def test_S6_interrupt_main_is_handled_like_sigint(runner_cls):
    async def main():
        _thread.interrupt_main()
        await asyncio.sleep(1)
        return "not interrupted"

    with runner_cls() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(main())


# ================================================================ A: asyncio.run


def test_A1_loop_factory_keyword(run_fn):
    made = []

    def factory():
        made.append(asyncio.new_event_loop())
        return made[-1]

    coro = answer()
    if VERSION == (3, 11):
        with pytest.raises(TypeError, match=re.escape("run() got an unexpected keyword argument 'loop_factory'")):
            run_fn(coro, loop_factory=factory)
        coro.close()
        assert made == []
    else:
        assert run_fn(coro, loop_factory=factory) == 42
        assert len(made) == 1 and made[0].is_closed()


def test_A1_debug_keyword(run_fn):
    async def debug_flag():
        return asyncio.get_running_loop().get_debug()

    assert run_fn(debug_flag(), debug=True) is True
    assert run_fn(debug_flag(), debug=False) is False


def test_A2_refuses_inside_running_loop_before_making_a_runner(run_fn, loop_calls):
    seen = {}

    async def main():
        inner = answer()
        before = len(loop_calls.new)
        try:
            run_fn(inner)
        except RuntimeError as exc:
            seen["message"] = str(exc)
        seen["new_loops"] = len(loop_calls.new) - before
        seen["unstarted"] = unstarted(inner)
        inner.close()

    run_fn(main())
    assert seen == {
        "message": "asyncio.run() cannot be called from a running event loop",
        "new_loops": 0,
        "unstarted": True,
    }


def test_A3_rejected_argument_still_costs_a_loop(run_fn, loop_calls):
    expected = ValueError if VERSION < (3, 14) else TypeError
    with pytest.raises(expected):
        run_fn(1)
    assert len(loop_calls.new) == 1
    loop = loop_calls.new[0]
    assert loop_calls.set == [loop, None]
    assert loop.is_closed()


def test_A3_returns_result_and_closes(run_fn, loop_calls):
    assert run_fn(answer()) == 42
    assert len(loop_calls.new) == 1 and loop_calls.new[0].is_closed()


def test_A4_no_current_loop_afterwards(run_fn, loop_calls):
    run_fn(noop())
    assert loop_calls.set[-1] is None
    if PY < (3, 14):
        with pytest.raises(RuntimeError, match="There is no current event loop"):
            asyncio.events.get_event_loop_policy().get_event_loop()


# ================================================================ K: leftover tasks


def test_K1_no_leftovers_leaves_loop_alone(runner_cls):
    log = []
    with runner_cls(loop_factory=lambda: RecordingLoop(log)) as runner:
        runner.run(noop())
        del log[:]
    # Only the two shutdown steps run the loop; no gather for an empty snapshot.
    assert log.count("run_until_complete") == 2


def test_K1_leftover_gather_runs_the_loop(runner_cls):
    log = []
    leftovers = []

    async def main():
        leftovers.append(asyncio.ensure_future(asyncio.sleep(3600)))

    with runner_cls(loop_factory=lambda: RecordingLoop(log)) as runner:
        runner.run(main())
        del log[:]
    assert log.count("run_until_complete") == 3


def _leftovers_named(names, seen, fail=False):
    async def leftover(name):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as exc:
            seen.append((name, exc.args))
            if fail:
                raise ValueError(name)  # noqa: B904 - a leftover failing while cancelled
            raise

    async def main():
        for name in names:
            asyncio.ensure_future(leftover(name)).set_name(name)
        await asyncio.sleep(0)

    return main


def test_K1_default_order_is_snapshot_iteration_order(runner_cls):
    seen = []
    runner = runner_cls()
    runner.run(_leftovers_named([f"t{i}" for i in range(8)], seen)())
    expected = [task.get_name() for task in asyncio.all_tasks(runner.get_loop())]
    runner.close()
    assert [name for name, _ in seen] == expected


def test_K2_leftovers_are_cancelled_without_message(runner_cls):
    seen = []
    with runner_cls() as runner:
        runner.run(_leftovers_named(["a", "b"], seen)())
    assert sorted(seen) == [("a", ()), ("b", ())]


def test_K4_tasks_spawned_during_shutdown_are_not_cancelled(runner_cls, caplog):
    state = {"late_cancelled": False}

    async def late():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["late_cancelled"] = True
            raise

    async def leftover():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["late"] = asyncio.ensure_future(late())
            raise

    async def main():
        state["leftover"] = asyncio.ensure_future(leftover())
        await asyncio.sleep(0)

    with runner_cls() as runner:
        runner.run(main())
    assert not state["late"].done()
    assert state["late_cancelled"] is False
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        del state["late"]
        gc.collect()
    assert "Task was destroyed but it is pending!" in caplog.text


def test_K5_shutdown_reports_exactly_these_keys(runner_cls):
    reports = []
    tasks = {}

    async def failing():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return 1 / 0

    async def swallowing():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "swallowed"

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))
        tasks["failing"] = asyncio.ensure_future(failing())
        tasks["swallowing"] = asyncio.ensure_future(swallowing())
        tasks["cancelled"] = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0)

    with runner_cls() as runner:
        runner.run(main())
    assert len(reports) == 1
    report = reports[0]
    assert list(report) == ["message", "exception", "task"]
    assert report["message"] == "unhandled exception during asyncio.run() shutdown"
    assert report["task"] is tasks["failing"]
    assert report["exception"] is tasks["failing"].exception()
    assert isinstance(report["exception"], ZeroDivisionError)


# ================================================================ reference only: version table


def test_version_default_is_interpreter_clamped():
    assert VERSION == min(max(PY, (3, 11)), (3, 14))
    assert reference.Runner().version == VERSION
    assert reference.SUPPORTED_VERSIONS == ((3, 11), (3, 12), (3, 13), (3, 14))


@pytest.mark.parametrize("bad", [(3, 10), (3, 15), (4, 0)])
def test_version_outside_table_is_refused(bad):
    with pytest.raises(ValueError, match="unsupported version"):
        reference.Runner(version=bad)
    coro = noop()
    with pytest.raises(ValueError, match="unsupported version"):
        reference.run(coro, version=bad)
    coro.close()


@pytest.mark.parametrize("bad", ["3.11", 311, (3,)])
def test_version_must_be_a_pair(bad):
    with pytest.raises(TypeError, match="pair"):
        reference.Runner(version=bad)


def test_version_314_run_rejects_non_awaitable_after_creating_the_loop(loop_calls):
    runner = reference.Runner(version=(3, 14))
    with pytest.raises(TypeError, match=r"^An asyncio.Future, a coroutine or an awaitable is required$"):
        runner.run(123)
    assert len(loop_calls.new) == 1  # R14-2: initialised before the type check
    assert loop_calls.set == [loop_calls.new[0]]
    assert runner.get_loop() is loop_calls.new[0]
    runner.close()


def test_version_314_order_of_checks():
    runner = reference.Runner(version=(3, 14))
    runner.get_loop()
    runner.close()
    with pytest.raises(RuntimeError, match=r"^Runner is closed$"):
        runner.run(123)
    seen = {}

    async def main():
        try:
            inner.run(1)
        except RuntimeError as exc:
            seen["message"] = str(exc)

    inner = reference.Runner(version=(3, 14))
    with reference.Runner(version=(3, 14)) as outer:
        outer.run(main())
    assert seen["message"] == "Runner.run() cannot be called from a running event loop"


def test_version_314_accepts_awaitables():
    @types.coroutine
    def generator_based():
        yield from asyncio.sleep(0).__await__()
        return "generator-based"

    class NamedAwaitable:
        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return asyncio.current_task().get_coro().__name__

    with reference.Runner(version=(3, 14)) as runner:
        loop = runner.get_loop()
        future = loop.create_future()
        loop.call_soon(future.set_result, "done")
        assert runner.run(future) == "done"
        task = loop.create_task(answer())
        assert runner.run(task) == 42
        assert runner.run(Awaitable()) == "awaited"
        assert runner.run(generator_based()) == "generator-based"
        assert runner.run(NamedAwaitable()) == "_wrap_awaitable"
        with pytest.raises(TypeError, match="an awaitable is required"):
            runner.run(x for x in [])
    with pytest.raises(TypeError, match="an awaitable is required"):
        reference.run(123, version=(3, 14))


def test_version_314_sigint_cancels_the_wrapped_future():
    with reference.Runner(version=(3, 14)) as runner:
        loop = runner.get_loop()
        future = loop.create_future()
        loop.call_later(0.05, signal.raise_signal, SIGINT)  # once the wrapper awaits it
        with pytest.raises(KeyboardInterrupt):
            runner.run(future)
        assert future.cancelled()


@pytest.mark.parametrize("version", [(3, 11), (3, 12), (3, 13)])
def test_version_311_to_313_reject_awaitables_with_valueerror(version, loop_calls):
    runner = reference.Runner(version=version)
    with pytest.raises(ValueError, match="a coroutine was expected, got "):
        runner.run(Awaitable())
    assert loop_calls.new == []
    runner.close()


def test_version_311_accepts_plain_generator():
    def generator():
        yield
        return "from a generator"

    with reference.Runner(version=(3, 11)) as runner:
        if PY < (3, 12):
            assert runner.run(generator()) == "from a generator"
        else:
            # The interpreter's own Task class refuses it: only the runner's
            # check follows the table.
            with pytest.raises(TypeError):
                runner.run(generator())


@pytest.mark.parametrize("version", [(3, 12), (3, 13)])
def test_version_312_313_reject_plain_generator(version):
    gen = (x for x in [])
    with reference.Runner(version=version) as runner:
        with pytest.raises(ValueError, match=re.escape(f"a coroutine was expected, got {gen!r}")):
            runner.run(gen)


def test_version_311_run_has_no_loop_factory():
    made = []
    coro = answer()
    with pytest.raises(TypeError, match=re.escape("run() got an unexpected keyword argument 'loop_factory'")):
        reference.run(coro, loop_factory=lambda: made.append(1), version=(3, 11))
    coro.close()
    assert made == []
    assert reference.run(answer(), version=(3, 11)) == 42


@pytest.mark.parametrize("version", [(3, 12), (3, 13), (3, 14)])
def test_version_312_on_run_takes_loop_factory(version):
    made = []

    def factory():
        made.append(asyncio.new_event_loop())
        return made[-1]

    assert reference.run(answer(), loop_factory=factory, version=version) == 42
    assert len(made) == 1 and made[0].is_closed()


@pytest.mark.parametrize("version", reference.SUPPORTED_VERSIONS)
def test_version_executor_timeout(version, monkeypatch):
    log = []
    monkeypatch.setattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", 7, raising=False)
    with reference.Runner(loop_factory=lambda: RecordingLoop(log), version=version) as runner:
        loop = runner.get_loop()
    assert loop.executor_args == [() if version == (3, 11) else (7,)]


def test_version_executor_timeout_falls_back_to_300(monkeypatch):
    log = []
    monkeypatch.delattr(asyncio.constants, "THREAD_JOIN_TIMEOUT", raising=False)
    with reference.Runner(loop_factory=lambda: RecordingLoop(log), version=(3, 12)) as runner:
        loop = runner.get_loop()
    assert loop.executor_args == [(300,)]


def test_version_executor_timeout_only_if_accepted(monkeypatch):
    calls = []

    class NoTimeoutLoop(asyncio.SelectorEventLoop):
        def shutdown_default_executor(self):
            calls.append("called")
            return asyncio.sleep(0)

    with reference.Runner(loop_factory=NoTimeoutLoop, version=(3, 13)) as runner:
        runner.run(noop())
    assert calls == ["called"]


# ================================================================ reference only: cancel_order


@pytest.mark.parametrize("order", list(itertools.permutations("abc")), ids="".join)
def test_cancel_order_controls_cancellation_order(order):
    seen = []
    given = []

    def cancel_order(tasks):
        given.append(sorted(task.get_name() for task in tasks))
        return sorted(tasks, key=lambda task: order.index(task.get_name()))

    with reference.Runner(cancel_order=cancel_order) as runner:
        runner.run(_leftovers_named(["a", "b", "c"], seen)())
    assert given == [["a", "b", "c"]]  # only the leftovers, not the finished main task
    assert [name for name, _ in seen] == list(order)


@pytest.mark.parametrize("order", list(itertools.permutations("abc")), ids="".join)
def test_cancel_order_controls_report_order(order):
    seen = []
    reported = []

    def cancel_order(tasks):
        return sorted(tasks, key=lambda task: order.index(task.get_name()))

    main = _leftovers_named(["a", "b", "c"], seen, fail=True)

    async def with_handler():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reported.append(ctx["task"].get_name()))
        await main()

    reference.run(with_handler(), cancel_order=cancel_order)
    assert reported == list(order)


def test_cancel_order_not_called_without_leftovers():
    calls = []
    with reference.Runner(cancel_order=lambda tasks: calls.append(tasks) or tasks) as runner:
        runner.run(noop())
    assert calls == []


def test_cancel_order_must_return_a_permutation():
    seen = []
    runner = reference.Runner(cancel_order=lambda tasks: tasks[:1])
    runner.run(_leftovers_named(["a", "b"], seen)())
    loop = runner.get_loop()
    with pytest.raises(ValueError, match="each exactly once"):
        runner.close()
    assert loop.is_closed()  # C-4 still applies
    with pytest.raises(TypeError, match="cancel_order must be callable"):
        reference.Runner(cancel_order=["not", "callable"])
