"""Targets: what a ``--candidate`` or ``--reference`` spec names, made runnable.

A target is loaded inside a worker process (never in the driver), so that
importing a candidate, which may patch the interpreter, touches nothing else.
It comes in one of three kinds, which decide how a scenario drives it:

``runner``
    A class with the ``asyncio.Runner`` API. Drives every scenario mode.
``run``
    An ``asyncio.run``-like function ``f(coro, *, debug=...)``. Drives only
    mode ``run`` scenarios.
``loop``
    A zero-argument event-loop factory. The stdlib ``asyncio.Runner`` drives it
    with ``loop_factory=``; its reference counterpart is ``reference.Runner``
    with ``loop_factory=asyncio.new_event_loop`` (not ``asyncio.run``), so the
    only difference between the two sides is the loop.

This module is on the execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

KINDS = ("runner", "run", "loop")


class TargetError(Exception):
    """A target spec cannot be loaded; the message is one line for the user."""


@dataclass
class Target:
    """A loaded target and how to build what a scenario needs from it."""

    spec: str
    kind: str
    obj: Any
    version: str = ""
    #: The stdlib or reference runner class that drives a ``loop`` target, and
    #: the loop factory to use when a scenario asks for one.
    driver: Any = None
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]] = None
    options: Dict[str, Any] = field(default_factory=dict)
    #: Features (``conformance.protocol``) the harness cannot drive this target with: scenarios
    #: needing one are unsupported, not run (the worker declares them in its handshake).
    lacks: Tuple[str, ...] = ()

    def supports(self, mode: str, loop_factory: bool) -> bool:
        return supports(self.kind, mode, loop_factory)

    def make_runner(self, debug: Optional[bool], loop_factory: bool, **extra: Any) -> Any:
        """A Runner-like object for modes ``with`` and ``close``.

        ``extra`` keyword arguments go to the constructor as they are (the
        interpreter passes the reference its ``cancel_order``).
        """
        kwargs: Dict[str, Any] = dict(self.options, **extra)
        if debug is not None:
            kwargs["debug"] = debug
        if loop_factory:
            kwargs["loop_factory"] = self.loop_factory
        cls = self.driver if self.kind == "loop" else self.obj
        return cls(**kwargs)

    def run_function(self, debug: Optional[bool], loop_factory: bool, **extra: Any) -> Callable[[Any], Any]:
        """A one-argument callable doing what ``asyncio.run(main)`` does, for mode ``run``."""
        kwargs: Dict[str, Any] = dict(self.options, **extra)
        if debug is not None:
            kwargs["debug"] = debug
        if loop_factory:
            kwargs["loop_factory"] = self.loop_factory
        if self.kind == "run":
            return lambda main: self.obj(main, **kwargs)

        def run_with_runner(main: Any) -> Any:
            with self.make_runner(debug, loop_factory, **extra) as runner:
                return runner.run(main)

        return run_with_runner

    def describe(self) -> Dict[str, str]:
        return {"spec": self.spec, "kind": self.kind, "version": self.version}


def supports(kind: str, mode: str, loop_factory: bool) -> bool:
    """Whether a target of ``kind`` can run a scenario with this runner config."""
    if kind == "run":
        return mode == "run"
    if kind == "loop":
        return loop_factory
    return True


def _stdlib_runner() -> Any:
    runner = getattr(asyncio, "Runner", None)
    if runner is None:
        raise TargetError(f"asyncio.Runner does not exist on Python {sys.version.split()[0]}; try 'backports'")
    return runner


def _python_version() -> str:
    return "CPython " + sys.version.split()[0] if sys.implementation.name == "cpython" else sys.version.split()[0]


def _reference(name: str) -> Any:
    import reference

    return getattr(reference, name)


def _builtin(spec: str) -> Optional[Target]:
    """The targets known by name."""
    if spec == "asyncio":
        return Target(spec, "runner", _stdlib_runner(), _python_version(), loop_factory=asyncio.new_event_loop)
    if spec == "asyncio.run":
        return Target(spec, "run", asyncio.run, _python_version(), loop_factory=asyncio.new_event_loop)
    if spec == "reference":
        return Target(spec, "runner", _reference("Runner"), "reference", loop_factory=asyncio.new_event_loop)
    if spec == "reference.run":
        return Target(spec, "run", _reference("run"), "reference", loop_factory=asyncio.new_event_loop)
    # The real candidates (uvloop, anyio, ...): conformance/candidates.py, loaded only here, in a worker.
    from conformance import candidates

    return candidates.load(spec)


from conformance.candidates import NAMES as _CANDIDATE_NAMES  # noqa: E402 - stdlib only at import, no cycle

BUILTIN_NAMES = ("asyncio", "asyncio.run", "reference", "reference.run") + _CANDIDATE_NAMES


def detect_kind(obj: Any) -> str:
    """Guess a ``MODULE:ATTR`` object's kind from its shape.

    A class with ``run`` and ``close`` is a runner; an event-loop class or a
    callable that needs no argument is a loop factory; a callable that takes a
    positional argument is a run function.
    """
    if inspect.isclass(obj):
        if issubclass(obj, asyncio.AbstractEventLoop):
            return "loop"
        if callable(getattr(obj, "run", None)) and callable(getattr(obj, "close", None)):
            return "runner"
    if not callable(obj):
        raise TargetError(f"{obj!r} is not callable, so it is not a runner, run function or loop factory")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        raise TargetError(f"cannot tell what kind of target {obj!r} is; pass --candidate-kind") from None
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) and p.default is p.empty
    ]
    return "run" if positional else "loop"


def load_target(spec: str, kind: Optional[str] = None) -> Target:
    """Load ``spec`` (a built-in name or ``MODULE:ATTR``), optionally forcing its kind."""
    if kind is not None and kind not in KINDS:
        raise TargetError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    target = _builtin(spec)
    if target is None:
        if ":" not in spec:
            raise TargetError(f"unknown candidate {spec!r}: use one of {', '.join(BUILTIN_NAMES)} or MODULE:ATTR")
        module_name, _, attr_path = spec.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetError(f"cannot import {module_name!r} for candidate {spec!r}: {exc}") from None
        except Exception as exc:  # a candidate's import-time error is the user's to see, in one line
            raise TargetError(f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
        for part in attr_path.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetError(f"module {module_name!r} has no attribute {attr_path!r}") from None
        version = str(getattr(sys.modules.get(module_name.split(".")[0]), "__version__", ""))
        target = Target(spec, kind or detect_kind(obj), obj, version, loop_factory=asyncio.new_event_loop)
        if target.kind == "loop":
            target.loop_factory = obj
    elif kind is not None and kind != target.kind:
        raise TargetError(f"{spec!r} is a {target.kind} target and cannot be used as a {kind}")
    if target.kind == "loop":
        # The stdlib Runner drives a loop; before 3.11 there is none, so ours does.
        target.driver = getattr(asyncio, "Runner", None) or _reference("Runner")
        target.loop_factory = target.loop_factory or target.obj
    return target
