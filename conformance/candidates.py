"""Built-in real candidates: the alternative runners and loops people use, driven as their documentation says.

Each entry of ``CANDIDATES`` is one ``--candidate`` name: its kind (``runner``,
``run`` or ``loop``, as in ``conformance.targets``), the pip requirements that
install it (and the extra of this package that lists them), the ``entry``
that names what is driven, and a *builder*: a function that imports the
candidate's package, does what its documentation says to do first (apply a
patch, make a ``QApplication``), and returns the object a scenario drives.
The builder's docstring says which documented usage it follows and every
choice the adapter had to make.

``entry`` is what a loaded candidate reports as its spec, and so what reports
and reproducer scripts name: the candidate's own object where it is driven
as it is (``taskgroup:Runner``), or ``conformance.candidates:NAME`` where an
adapter stands between the scenario and the candidate. Those ``NAME``\\ s are
attributes of this module made on first access (``__getattr__``), so that
``--candidate conformance.candidates:anyio_run`` and a reproducer's
``from conformance.candidates import anyio_run`` load the candidate the same
way the built-in name does, in the process that runs it.

Loading happens only inside a worker process (``conformance.targets``), never
in the driver: importing this module imports nothing but the standard library,
and the versions that ``conformance candidates`` lists come from the installed
distributions' metadata (``importlib.metadata``), without importing them. That
matters for the candidates that patch the interpreter as they load
(nest_asyncio, gevent, trio-asyncio).

Adapters of ``run(async_fn)``-style functions (anyio, trio-asyncio, tornado)
hand the candidate a zero-argument function returning the scenario's main
coroutine, and anything that is not a coroutine (``run_object`` calls) as it
is, so that the candidate's own error shows. Where a candidate has a debug
option the adapter forwards ``debug`` to it; where it has none (aiorun,
trio-asyncio, tornado), the adapter sets it on the candidate's event loop with
``loop.set_debug``, the asyncio API such a user would call.

This module is on the execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import asyncio
import collections.abc
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

#: The distribution this module belongs to, for ``pip install 'runner-conformance[EXTRA]'``.
PACKAGE = "runner-conformance"


@dataclass(frozen=True)
class Candidate:
    """One built-in candidate (see the module docstring)."""

    name: str
    kind: str
    #: pip requirements; the first one is the candidate itself, the others what it needs to run here.
    requirements: Tuple[str, ...]
    #: The optional extra of this package that installs ``requirements``.
    extra: str
    #: ``MODULE:ATTR`` naming what is driven; a bare name only for the stdlib-rendered ``uvloop``.
    entry: str
    #: Imports the candidate and returns what a scenario drives (class, run function or loop factory).
    build: Callable[[], Any]
    #: Top-level modules whose absence (ModuleNotFoundError) means "not installed".
    modules: Tuple[str, ...] = ()
    #: Features (``conformance.protocol``) the harness cannot drive this candidate with; the
    #: builder's docstring says why. Scenarios needing one are unsupported, never divergences.
    lacks: Tuple[str, ...] = ()

    @property
    def distributions(self) -> Tuple[str, ...]:
        """The distribution names of ``requirements`` (without version specifiers)."""
        return tuple(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0] for requirement in self.requirements)

    @property
    def pip(self) -> str:
        """The command that installs the candidate."""
        return "pip install " + " ".join(self.requirements)

    @property
    def usage(self) -> str:
        """The first line of the builder's docstring: which documented usage it follows."""
        return (self.build.__doc__ or "").strip().split("\n", 1)[0]

    def installed(self) -> Dict[str, Optional[str]]:
        """The installed version of each requirement's distribution (None: not installed), from metadata."""
        return {name: distribution_version(name) for name in self.distributions}

    def version(self) -> str:
        """The candidate's version as a report shows it; several distributions are named one by one."""
        versions = self.installed()
        if len(versions) == 1:
            return next(iter(versions.values())) or ""
        return ", ".join(f"{name} {version or 'not installed'}" for name, version in versions.items())

    def load(self) -> Any:
        """The loaded ``targets.Target`` (in a worker process); raises ``targets.TargetError`` if unloadable."""
        from conformance.targets import Target, TargetError

        try:
            obj = built(self)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or ""
            if isinstance(exc, ModuleNotFoundError) and missing.split(".")[0] in self.modules:
                raise TargetError(f"candidate {self.name!r} is not installed ({self.pip})") from None
            text = " ".join(str(exc).split())
            raise TargetError(f"candidate {self.name!r} cannot be imported ({self.pip}): {text}") from None
        loop_factory = obj if self.kind == "loop" else asyncio.new_event_loop
        return Target(self.entry, self.kind, obj, self.version(), loop_factory=loop_factory, lacks=self.lacks)


@dataclass(frozen=True)
class Unavailable:
    """A candidate the suite knows of that does not install on the machines it was written on."""

    name: str
    requirement: str
    reason: str
    #: What to pass as ``--candidate`` where it does install.
    spec: str = "MODULE:ATTR"


def distribution_version(name: str) -> Optional[str]:
    """The installed version of distribution ``name``, or None; reads metadata, imports nothing."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_BUILT: Dict[str, Any] = {}


def built(candidate: Candidate) -> Any:
    """What ``candidate.build()`` returned, built once per process."""
    if candidate.name not in _BUILT:
        _BUILT[candidate.name] = candidate.build()
    return _BUILT[candidate.name]


def _async_fn(main: Any, debug: Optional[bool] = None) -> Any:
    """What a ``run(async_fn)``-style candidate is handed for ``main``.

    A coroutine becomes a zero-argument function returning it (setting the
    running loop's debug flag first when ``debug`` is given); anything else is
    handed over as it is, so that the candidate's own error shows.
    """
    if not isinstance(main, collections.abc.Coroutine):
        return main

    def main_coroutine() -> Any:
        if debug is not None:
            asyncio.get_running_loop().set_debug(debug)
        return main

    return main_coroutine


# ------------------------------------------------------------------ builders


def _uvloop() -> Any:
    """uvloop's loop factory ``uvloop.new_event_loop``, driven by ``asyncio.Runner(loop_factory=...)``.

    uvloop's README: ``asyncio.Runner(loop_factory=uvloop.new_event_loop)``.
    Compared with the reference Runner driving asyncio's own loop.
    """
    import uvloop

    return uvloop.new_event_loop


def _uvloop_run() -> Any:
    """``uvloop.run(main, debug=...)``, uvloop's README's preferred way of running a coroutine.

    On 3.11 it is ``asyncio.Runner(loop_factory=uvloop.new_event_loop)`` around
    a wrapper coroutine that checks the loop and awaits ``main`` (so a
    non-coroutine shows uvloop's own error). Compared with ``asyncio.run``.
    """
    import uvloop

    return uvloop.run


def _rloop() -> Any:
    """rloop's loop factory ``rloop.new_event_loop``, driven by ``asyncio.Runner(loop_factory=...)``.

    rloop's README sets ``asyncio.set_event_loop_policy(rloop.EventLoopPolicy())``
    and then makes loops with ``asyncio.new_event_loop()``: the policy's loops
    are the factory's. A policy set for the whole process would outlive each
    scenario (the harness resets the policy before every one), so the factory
    is passed to the Runner instead. (Its README says rloop does not support
    debugging.)
    """
    import rloop

    return rloop.new_event_loop


def _backports() -> Any:
    """``backports.asyncio.runner.Runner``, a drop-in ``asyncio.Runner`` (its README: ``with Runner() as runner``).

    Its README says it is meant for Python 3.8 to 3.10 (where the stdlib has no
    Runner); on 3.11 pip still installs 1.0.0 (1.2.0 needs Python < 3.11). The
    class is used as it is, with every Runner call the scenarios make.
    """
    from backports.asyncio.runner import Runner

    return Runner


def _taskgroup_runner() -> Any:
    """``taskgroup.Runner``, the taskgroup backport's ``asyncio.Runner`` (with its own task factory), used as it is."""
    import taskgroup

    return taskgroup.Runner


def _taskgroup_run() -> Any:
    """``taskgroup.run(main, debug=...)``, the taskgroup backport's ``asyncio.run``, used as it is."""
    import taskgroup

    return taskgroup.run


def _anyio(use_uvloop: bool) -> Callable[[], Any]:
    def build() -> Any:
        import anyio

        if use_uvloop:
            import uvloop  # noqa: F401 - anyio imports it only when running; a missing uvloop must show at load

        def run(main: Any, *, debug: Optional[bool] = None) -> Any:
            options: Dict[str, Any] = {"use_uvloop": True} if use_uvloop else {}
            if debug is not None:
                options["debug"] = debug
            return anyio.run(_async_fn(main), backend="asyncio", backend_options=options)

        run.__qualname__ = run.__name__ = "anyio_uvloop_run" if use_uvloop else "anyio_run"
        run.__module__ = __name__
        return run

    return build


_anyio_asyncio = _anyio(False)
_anyio_asyncio.__doc__ = """``anyio.run(async_fn, backend="asyncio")``, as anyio's docs run a program.

anyio takes an async *function*: the adapter hands it a zero-argument function
returning the scenario's main coroutine (a non-coroutine as it is: anyio's own
error shows). ``debug`` goes through the documented backend option
(``backend_options={"debug": debug}``).
"""
_anyio_uvloop = _anyio(True)
_anyio_uvloop.__doc__ = """``anyio.run(..., backend="asyncio", backend_options={"use_uvloop": True})``: anyio on uvloop.

As ``anyio``, with anyio's documented backend option that makes its asyncio
backend create a uvloop loop.
"""


def _aiorun() -> Any:
    """``aiorun.run(main_then_stop(), stop_on_unhandled_errors=True)``: aiorun's README, with main stopping the loop.

    ``aiorun.run`` runs the loop forever; its README says to call
    ``loop.stop()`` inside main to shut down when main completes. The adapter
    runs ``main_then_stop()``: it awaits the scenario's main coroutine and
    calls ``loop.stop()`` in a ``finally``, which starts aiorun's own shutdown
    (cancel the other tasks, wait for them, shut the executor down, finalize
    async generators, close the loop).

    How the outcome of main surfaces: ``aiorun.run`` returns None, so the
    adapter returns what main returned and, once ``aiorun.run`` has returned,
    raises what main raised (an exception out of ``aiorun.run`` itself wins).
    ``main_then_stop`` only watches: it lets main's exception propagate as
    aiorun's own wrapper task would (aiorun suppresses a ``CancelledError``
    from main and leaves any other exception to the loop's exception handler,
    as a task exception never retrieved), so aiorun's handling happens as it
    would without the adapter. The task the scenario sees as main is aiorun's
    wrapper task, which returns None whatever main returned.

    ``stop_on_unhandled_errors=True`` is aiorun's documented way to make errors
    end the program as in a normal Python program; note that the scenario's
    main coroutine installs the harness's recording exception handler as it
    starts, which replaces the one aiorun installs for that option. aiorun has
    no debug option: ``debug`` is set with ``loop.set_debug`` before main
    starts. A non-coroutine is handed to ``aiorun.run`` as it is (aiorun does
    not check it: ``None`` means no main at all, and the loop runs forever).
    aiorun replaces the SIGINT and SIGTERM handlers and does not restore them:
    that is its behaviour, and the worker is replaced after such a scenario.
    """
    import aiorun

    def run(main: Any, *, debug: Optional[bool] = None) -> Any:
        if not isinstance(main, collections.abc.Coroutine):
            return aiorun.run(main, stop_on_unhandled_errors=True)
        outcome: Dict[str, Any] = {}

        async def main_then_stop() -> None:
            loop = asyncio.get_running_loop()
            if debug is not None:
                loop.set_debug(debug)
            try:
                outcome["returned"] = await main
            except BaseException as exc:
                outcome["raised"] = exc
                raise
            finally:
                loop.stop()

        aiorun.run(main_then_stop(), stop_on_unhandled_errors=True)
        if "raised" in outcome:
            raise outcome["raised"]
        return outcome.get("returned")

    run.__qualname__ = run.__name__ = "aiorun_run"
    run.__module__ = __name__
    return run


def _nest_asyncio_apply() -> None:
    """``nest_asyncio.apply()``, then close the loop it made current, so that programs start without one.

    ``apply()`` patches the current loop's class, making and setting a loop when
    there is none. Left open, that loop would be dropped unclosed by whatever
    replaces it first (the harness, before each scenario; a reproducer's first
    Runner), with a ResourceWarning in that program. Every later loop of the
    class is patched all the same, and nest_asyncio's ``run`` makes a patched
    one when there is no current loop.
    """
    import nest_asyncio

    nest_asyncio.apply()
    loop = asyncio.get_event_loop_policy().get_event_loop()
    asyncio.set_event_loop(None)
    loop.close()


def _nest_asyncio_runner() -> Any:
    """``nest_asyncio.apply()`` once, as its README says, then the stdlib ``asyncio.Runner``.

    ``apply()`` patches asyncio (pure-Python tasks and futures, a reentrant
    ``run_until_complete`` on the loop class, ``asyncio.run``); it also makes
    and sets the thread's event loop, which the harness drops before each
    scenario. ``asyncio.Runner`` itself is not patched by nest_asyncio 1.6.
    """
    _nest_asyncio_apply()
    return asyncio.Runner


def _nest_asyncio_run() -> Any:
    """``nest_asyncio.apply()`` once, then ``asyncio.run``: the patched function that nest_asyncio installs.

    nest_asyncio's ``run(main, *, debug=False)`` runs main on the thread's
    current loop (made and set if there is none) and neither cancels leftover
    tasks nor closes the loop: that is what is compared with ``asyncio.run``.
    """
    _nest_asyncio_apply()
    return asyncio.run


def _trio_asyncio() -> Any:
    """``trio_asyncio.run(trio_asyncio.aio_as_trio(async_main))``: trio-asyncio's docs for an asyncio program.

    trio-asyncio's usage guide ("Asyncio main loop") says to turn
    ``asyncio.run(async_main())`` into exactly this: a Trio main loop with an
    asyncio loop open inside it, and the asyncio-flavoured function called
    through ``aio_as_trio``. Its compatibility mode (a ``SyncTrioEventLoop``
    driven by ``run_until_complete``) is described there as less well
    supported, so it is not used. ``async_main`` is a zero-argument function
    returning the scenario's main coroutine (a non-coroutine is handed over as
    it is). trio_asyncio has no debug option: ``debug`` is set on its loop
    with ``loop.set_debug`` as main starts. Importing trio_asyncio installs
    its event loop policy, once, at load.

    Lacks ``op:executor``: to keep executor work from racing the loop, the
    harness blocks the loop's thread until an (instant) job has run, but
    trio-asyncio starts executor jobs from a Trio task on that same thread,
    so the job never starts and the scenario deadlocks (a harness limit, not
    trio-asyncio's behaviour).
    """
    import trio_asyncio

    def run(main: Any, *, debug: Optional[bool] = None) -> Any:
        return trio_asyncio.run(trio_asyncio.aio_as_trio(_async_fn(main, debug)))

    run.__qualname__ = run.__name__ = "trio_asyncio_run"
    run.__module__ = __name__
    return run


def _tornado() -> Any:
    """``IOLoop.current().run_sync(main)``: the example in the docstring of tornado's ``IOLoop.run_sync``.

    ``run_sync`` takes a function returning an awaitable: the adapter hands it
    a zero-argument function returning the scenario's main coroutine (a
    non-coroutine as it is: tornado's own error shows). ``IOLoop.current()``
    wraps the thread's current asyncio loop, making one if there is none;
    ``run_sync`` neither cancels leftover tasks nor closes that loop, and the
    adapter does not add that either (the example ends the process). Tornado
    has no debug option: ``debug`` is set on the wrapped asyncio loop with
    ``loop.set_debug`` before ``run_sync``, where ``asyncio.run`` sets it.
    """
    from tornado.ioloop import IOLoop

    def run(main: Any, *, debug: Optional[bool] = None) -> Any:
        io_loop = IOLoop.current()
        if debug is not None:
            io_loop.asyncio_loop.set_debug(debug)  # type: ignore[attr-defined]
        return io_loop.run_sync(_async_fn(main))

    run.__qualname__ = run.__name__ = "tornado_run"
    run.__module__ = __name__
    return run


def _asyncio_gevent() -> Any:
    """``gevent.monkey.patch_all()`` once, then the loop factory ``asyncio_gevent.EventLoop`` for ``asyncio.Runner``.

    asyncio-gevent's README patches first and then either sets
    ``asyncio_gevent.EventLoopPolicy()`` and calls ``asyncio.run``, or makes
    ``asyncio_gevent.EventLoop()`` itself. The policy's loops are
    ``EventLoop`` instances; a policy set for the whole process would outlive
    each scenario (the harness resets the policy before every scenario), so
    the loop class is passed as the loop factory instead and compared with
    the reference Runner driving asyncio's own loop. ``patch_all()`` runs in
    the worker after the standard library (threading, asyncio) is imported:
    threads become greenlets from then on.
    """
    from gevent import monkey

    monkey.patch_all()
    import asyncio_gevent

    return asyncio_gevent.EventLoop


def _qt_application() -> Any:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication  # imported first, so that qasync picks PySide6

    return QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "conformance"])


def _qasync_loop() -> Any:
    """``qasync.QEventLoop(app)`` as the loop factory for ``asyncio.Runner``, from qasync's ``QEventLoop`` docstring.

    qasync documents ``asyncio.run(main(), loop_factory=lambda: QEventLoop(app))``;
    on 3.11 the same factory goes to ``asyncio.Runner``. One ``QApplication``
    (PySide6, ``QT_QPA_PLATFORM=offscreen`` unless set) is made at load and
    shared by every loop, as an application has one.
    """
    app = _qt_application()
    import qasync

    def qasync_event_loop() -> Any:
        return qasync.QEventLoop(app)

    qasync_event_loop.__module__ = __name__
    return qasync_event_loop


def _qasync_run() -> Any:
    """``qasync.run(main, debug=...)``, qasync's README's way of running a coroutine.

    On 3.11 it is ``asyncio.run`` under a temporary event loop policy whose
    loops are ``QEventLoop`` instances. The ``QApplication`` (PySide6,
    offscreen) is made at load, as ``qasync.run`` would make it on first use.
    """
    _qt_application()
    import qasync

    return qasync.run


# ------------------------------------------------------------------ registry


def _adapter(name: str) -> str:
    return f"{__name__}:{name}"


CANDIDATES: Tuple[Candidate, ...] = (
    Candidate("uvloop", "loop", ("uvloop",), "uvloop", "uvloop", _uvloop, ("uvloop",)),
    Candidate("uvloop.run", "run", ("uvloop",), "uvloop", "uvloop:run", _uvloop_run, ("uvloop",)),
    Candidate("rloop", "loop", ("rloop",), "rloop", "rloop:new_event_loop", _rloop, ("rloop",)),
    Candidate(
        "backports",
        "runner",
        ("backports.asyncio.runner",),
        "backports",
        "backports.asyncio.runner:Runner",
        _backports,
        ("backports",),
    ),
    Candidate(
        "taskgroup", "runner", ("taskgroup",), "taskgroup", "taskgroup:Runner", _taskgroup_runner, ("taskgroup",)
    ),
    Candidate("taskgroup.run", "run", ("taskgroup",), "taskgroup", "taskgroup:run", _taskgroup_run, ("taskgroup",)),
    Candidate("anyio", "run", ("anyio",), "anyio", _adapter("anyio_run"), _anyio_asyncio, ("anyio",)),
    Candidate(
        "anyio+uvloop",
        "run",
        ("anyio", "uvloop"),
        "anyio-uvloop",
        _adapter("anyio_uvloop_run"),
        _anyio_uvloop,
        ("anyio", "uvloop"),
    ),
    Candidate("aiorun", "run", ("aiorun",), "aiorun", _adapter("aiorun_run"), _aiorun, ("aiorun",)),
    Candidate(
        "nest_asyncio",
        "runner",
        ("nest_asyncio",),
        "nest-asyncio",
        _adapter("nest_asyncio_runner"),
        _nest_asyncio_runner,
        ("nest_asyncio",),
    ),
    Candidate(
        "nest_asyncio.run",
        "run",
        ("nest_asyncio",),
        "nest-asyncio",
        _adapter("nest_asyncio_run"),
        _nest_asyncio_run,
        ("nest_asyncio",),
    ),
    Candidate(
        "trio-asyncio",
        "run",
        ("trio-asyncio",),
        "trio-asyncio",
        _adapter("trio_asyncio_run"),
        _trio_asyncio,
        ("trio_asyncio", "trio"),
        lacks=("op:executor",),
    ),
    Candidate("tornado", "run", ("tornado",), "tornado", _adapter("tornado_run"), _tornado, ("tornado",)),
    Candidate(
        "asyncio-gevent",
        "loop",
        ("asyncio-gevent",),
        "asyncio-gevent",
        _adapter("asyncio_gevent_loop"),
        _asyncio_gevent,
        ("asyncio_gevent", "gevent"),
    ),
    Candidate(
        "qasync",
        "loop",
        ("qasync", "PySide6-Essentials"),
        "qasync",
        _adapter("qasync_loop"),
        _qasync_loop,
        ("qasync", "PySide6", "shiboken6"),
    ),
    Candidate(
        "qasync.run",
        "run",
        ("qasync", "PySide6-Essentials"),
        "qasync",
        _adapter("qasync_run"),
        _qasync_run,
        ("qasync", "PySide6", "shiboken6"),
    ),
)

#: Known candidates that do not install on CPython 3.11 / Linux x86-64 (Debian 12), and why.
UNAVAILABLE: Tuple[Unavailable, ...] = (
    Unavailable(
        "rsloop",
        "rsloop",
        "its wheels need glibc 2.39 (Debian 12 has 2.36) and its sdist a nightly Rust toolchain",
        "rsloop:new_event_loop (a loop factory) or rsloop:run",
    ),
    Unavailable("zuvloop", "zuvloop", "needs Python 3.14 or newer"),
)

#: The built-in candidate names, in registry order.
NAMES: Tuple[str, ...] = tuple(candidate.name for candidate in CANDIDATES)

_BY_NAME: Dict[str, Candidate] = {candidate.name: candidate for candidate in CANDIDATES}
#: ``conformance.candidates:ATTR`` entries, by attribute name.
_BY_ENTRY: Dict[str, Candidate] = {
    candidate.entry.partition(":")[2]: candidate
    for candidate in CANDIDATES
    if candidate.entry.startswith(__name__ + ":")
}


def get(name: str) -> Optional[Candidate]:
    """The built-in candidate called ``name``, or None."""
    return _BY_NAME.get(name)


def load(name: str) -> Any:
    """The loaded ``targets.Target`` of candidate ``name``, or None if no candidate has that name.

    Raises ``targets.TargetError`` with one line for a candidate that is not
    installed (naming the pip command) or that the suite knows cannot be
    installed here.
    """
    candidate = _BY_NAME.get(name)
    if candidate is not None:
        return candidate.load()
    for unavailable in UNAVAILABLE:
        if unavailable.name == name:
            from conformance.targets import TargetError

            raise TargetError(
                f"candidate {name!r} is known but not built in: {unavailable.reason}; where "
                f"'pip install {unavailable.requirement}' works, use --candidate {unavailable.spec}"
            )
    return None


def __getattr__(name: str) -> Any:
    """``conformance.candidates:ATTR`` adapters and objects, loaded on first access (PEP 562)."""
    candidate = _BY_ENTRY.get(name)
    if candidate is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return built(candidate)


def listing() -> List[Dict[str, str]]:
    """One row per built-in candidate, then per known-unavailable one (metadata only: nothing is imported)."""
    rows = []
    for candidate in CANDIDATES:
        versions = candidate.installed()
        missing = [name for name, version in versions.items() if version is None]
        rows.append(
            {
                "name": candidate.name,
                "kind": candidate.kind,
                "version": candidate.version() if not missing else "not installed",
                "install": f"{candidate.pip}  (or pip install '{PACKAGE}[{candidate.extra}]')",
                "usage": candidate.usage,
            }
        )
    for unavailable in UNAVAILABLE:
        rows.append(
            {
                "name": unavailable.name,
                "kind": "-",
                "version": "unavailable",
                "install": f"pip install {unavailable.requirement} does not work here: {unavailable.reason}",
                "usage": "",
            }
        )
    return rows
