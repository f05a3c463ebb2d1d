"""The worker process: runs scenarios under one target, never in the driver.

``python -m conformance.worker --target SPEC [--kind KIND]`` loads the target,
answers one handshake line and then serves JSON-line requests on stdin, one at
a time, each answered by one JSON line on the protocol channel (the original
stdout). The driver may queue several requests; they are answered in order.
The driver side is ``conformance.isolation``.

Protocol (one JSON object per line, ASCII)::

    <- {"ready": {"spec", "kind", "version"}, "protocol": 1, "python": "3.11.7", "pid": 123, ...}
    <- {"error": "<one line>"}                         (then exit 2)
    -> {"id": N, "scenario": <scenario object, or its text>}
    <- {"id": N, "observation": {...}}
    -> {"id": N, "scenario": ..., "orders": [[label, ...], ...], "expect": {...}}
    <- {"id": N, "found": [label, ...] | null, "tried": k}
    <- {"id": N, "error": "<type>: <message>", "traceback": "..."}   (the worker keeps serving)

Any reply may carry ``"dirty": "<reason>"``: the scenario left the process in a
state that could change what the next scenario sees (a running loop, a foreign
SIGINT handler, a live thread, a foreign event loop policy). The worker exits
right after such a reply, so a dirty process never runs another scenario.

User code may print: fd 1 (and ``sys.stdout``) point at stderr, and the
protocol uses a private duplicate of the original stdout. Standard input is
likewise moved to a private descriptor and fd 0 reads ``/dev/null``.

This module is on the execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from typing import Any, BinaryIO, Dict, List, Optional, Set, Tuple

#: How long leftover threads (a default executor shutting down) get to finish
#: before the process counts as dirty.
THREAD_GRACE_S = 1.0

#: Exit status after a dirty reply, and after a failed handshake.
EXIT_DIRTY = 3
EXIT_START_FAILED = 2


def _one_line(text: str, limit: int = 2000) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _exception_text(exc: BaseException) -> str:
    return _one_line(f"{type(exc).__name__}: {exc}")


class Channel:
    """The protocol channel: private copies of the original stdin and stdout."""

    def __init__(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        # os.dup gives non-inheritable descriptors: subprocesses of user code
        # do not get the protocol channel either.
        self.out_fd = os.dup(1)
        self.in_file: BinaryIO = os.fdopen(os.dup(0), "rb")
        os.dup2(2, 1)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.close(null_fd)
        # The old sys.stdout object now writes to fd 1, i.e. stderr; flush
        # it per line so that user prints interleave sensibly with tracebacks.
        try:
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        except Exception:
            pass

    def send(self, message: Dict[str, Any]) -> None:
        view = memoryview(reply_line(message))
        while view:
            written = os.write(self.out_fd, view)
            view = view[written:]

    def receive(self) -> Optional[bytes]:
        """The next request line, or None at end of input."""
        line = self.in_file.readline()
        return line if line else None


def _limit_core_dumps() -> None:
    """A crashing candidate must not leave a core file per scenario."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except Exception:
        pass


def _freeze_heap() -> None:
    """Leave what exists now out of every later garbage collection.

    The interpreter makes two or three full collections per scenario, and a
    full collection walks every tracked object: about 19,000 after start-up,
    against a few hundred that a scenario makes. Frozen, they are skipped, and
    a scenario costs about a tenth of the CPU time (1 ms instead of 11 ms on
    the machine of docs/performance.md). Frozen objects are never collected,
    so garbage is collected first.

    Called after start-up and again after every scenario: what a scenario
    leaves alive (source lines that debug mode's tracebacks cached, modules
    imported on first use, a candidate's own caches) would otherwise be walked
    by every collection of every later scenario (measured: 67 µs per
    collection, three collections per scenario). A survivor that becomes
    garbage later is then never collected, so it cannot be finalized during,
    and reported in, some later scenario either. Not every implementation has
    ``gc.freeze`` (PyPy's collector has no such cost).
    """
    freeze = getattr(gc, "freeze", None)
    if freeze is not None:
        gc.collect()
        freeze()


def _policy() -> Any:
    """The installed event loop policy object, without creating one."""
    return getattr(asyncio.events, "_event_loop_policy", None)


def _is_default_policy(policy: Any) -> bool:
    """No policy installed yet (asyncio makes the default one on demand) or the default one itself.

    The interpreter resets the policy to ``None`` after every scenario, so a
    process that had a default policy object before is still clean after.
    """
    return policy is None or type(policy) is getattr(asyncio, "DefaultEventLoopPolicy", None)


class Cleanliness:
    """What a scenario must leave as it found it, relative to the state after start-up."""

    def __init__(self) -> None:
        self.threads: Set[threading.Thread] = set(threading.enumerate())
        self.policy = _policy()

    def check(self) -> Optional[str]:
        """Why the process is not fit for another scenario, or None; resets the current loop."""
        reasons: List[str] = []
        running = asyncio.events._get_running_loop()
        if running is not None:
            reasons.append(f"an event loop is still running in the main thread ({type(running).__name__})")
        handler = signal.getsignal(signal.SIGINT)
        if handler is not signal.default_int_handler:
            reasons.append(f"the SIGINT handler is {_describe_handler(handler)}, not the default one")
        policy = _policy()
        if policy is not self.policy and not (_is_default_policy(self.policy) and _is_default_policy(policy)):
            reasons.append(f"event loop policy {type(policy).__module__}.{type(policy).__qualname__} left installed")
        leftover = self._leftover_threads()
        if leftover:
            names = ", ".join(sorted(t.name for t in leftover))
            reasons.append(f"{len(leftover)} thread(s) still alive after {THREAD_GRACE_S:g} s: {names}")
        if not reasons and policy is not None:
            # The current event loop of this thread is per-scenario state: drop it.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                asyncio.set_event_loop(None)
        return "; ".join(reasons) or None

    def _leftover_threads(self) -> List[threading.Thread]:
        deadline = time.monotonic() + THREAD_GRACE_S
        leftover = []
        for thread in threading.enumerate():
            if thread in self.threads or thread is threading.current_thread():
                continue
            if isinstance(thread, threading._DummyThread):
                # Not a thread this process started: a thread started outside ``threading``
                # or, under gevent's monkey-patching, a greenlet. It cannot be joined.
                continue
            try:
                thread.join(max(0.0, deadline - time.monotonic()))
            except Exception:  # a foreign thread class may refuse to be joined
                pass
            try:
                alive = thread.is_alive()
            except Exception:
                alive = True
            if alive:
                leftover.append(thread)
        return leftover


def _describe_handler(handler: Any) -> str:
    if handler is None:
        return "not set from Python"
    if isinstance(handler, int):
        try:
            return signal.Handlers(handler).name
        except ValueError:
            return str(handler)
    return getattr(handler, "__qualname__", None) or repr(handler)


def _normalized(value: Any) -> Any:
    """The value as the other side of the protocol sees it (tuples become lists, ...)."""
    return json.loads(_encode(value))


def _encode(value: Any) -> str:
    """Protocol JSON text: ASCII, compact, and strict (no NaN or infinity, which JSON lacks)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


class Encoded:
    """JSON text already encoded, sent as it is: an observation is encoded once, not three times."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def reply_line(message: Dict[str, Any]) -> bytes:
    """One protocol line; ``Encoded`` values are spliced in unchanged."""
    plain = {key: value for key, value in message.items() if not isinstance(value, Encoded)}
    text = _encode(plain)
    spliced = "".join(f",{_encode(key)}:{value.text}" for key, value in message.items() if isinstance(value, Encoded))
    if spliced:
        text = "{" + spliced[1:] + "}" if text == "{}" else text[:-1] + spliced + "}"
    return (text + "\n").encode("ascii")


class Worker:
    def __init__(self, channel: Channel, target: Any, execute: Any) -> None:
        self.channel = channel
        self.target = target
        self.execute = execute
        self.cleanliness = Cleanliness()

    def serve(self) -> int:
        while True:
            line = self.channel.receive()
            if line is None:
                return 0
            if not line.strip():
                continue
            reply = self.handle(line)
            try:
                self.channel.send(reply)
            except OSError:  # the driver is gone
                return 1
            if "dirty" in reply:
                return EXIT_DIRTY

    def handle(self, line: bytes) -> Dict[str, Any]:
        request_id = None
        try:
            request = json.loads(line.decode("utf-8"))
            if not isinstance(request, dict):
                raise ValueError(f"a request is a JSON object, got {type(request).__name__}")
            request_id = request.get("id")
            reply = {"id": request_id}
            scenario = self.scenario(request)
            if "orders" in request:
                orders, expect = self.search_request(request)
                reply.update(self.search(scenario, orders, expect))
            else:
                result, dirty = self.run(scenario, None)
                reply.update(result)
                if dirty:
                    reply["dirty"] = dirty
        except BaseException as exc:
            reply = {"id": request_id, "error": _exception_text(exc), "traceback": traceback.format_exc()}
        return reply

    @staticmethod
    def scenario(request: Dict[str, Any]) -> Any:
        from conformance import scenario as model

        if "scenario" not in request:
            raise ValueError("the request has no 'scenario' field")
        raw = request["scenario"]
        if isinstance(raw, str):
            return model.loads(raw)
        return model.from_json(raw)

    @staticmethod
    def search_request(request: Dict[str, Any]) -> Tuple[List[List[str]], Any]:
        orders = request["orders"]
        if not isinstance(orders, list) or not all(
            isinstance(order, list) and all(isinstance(label, str) for label in order) for order in orders
        ):
            raise ValueError("'orders' must be a list of lists of task labels")
        if "expect" not in request:
            raise ValueError("a request with 'orders' needs 'expect'")
        return orders, request["expect"]

    def run(self, scenario: Any, order: Optional[List[str]]) -> Tuple[Dict[str, Any], Optional[str]]:
        """Run once; returns the reply fields and the dirt left behind, if any."""
        try:
            if order is None:
                observation = self.execute(scenario, self.target)
            else:
                observation = self.execute(scenario, self.target, cancel_order=order)
            try:
                result: Dict[str, Any] = {"observation": Encoded(_encode(observation))}
            except (TypeError, ValueError) as exc:
                result = {"error": f"the observation is not JSON: {_exception_text(exc)}", "traceback": ""}
        except BaseException as exc:
            result = {"error": _exception_text(exc), "traceback": traceback.format_exc()}
        try:
            dirty = self.cleanliness.check()
        except BaseException as exc:
            dirty = f"checking the process state raised {_exception_text(exc)}"
        if not dirty:
            _freeze_heap()
        return result, dirty

    def search(self, scenario: Any, orders: List[List[str]], expect: Any) -> Dict[str, Any]:
        """Run once per cancellation order until one gives ``expect``."""
        expect = _normalized(expect)
        tried = 0
        for order in orders:
            result, dirty = self.run(scenario, order)
            tried += 1
            if "error" in result:
                result["tried"] = tried
                if dirty:
                    result["dirty"] = dirty
                return result
            if dirty:
                return {"found": None, "tried": tried, "dirty": dirty}
            if json.loads(result["observation"].text) == expect:
                return {"found": order, "tried": tried}
        return {"found": None, "tried": tried}


def main(argv: Optional[List[str]] = None) -> int:
    # First thing: a process started in the background inherits SIGINT
    # ignored, and asyncio.Runner installs its Ctrl-C handler only over the
    # default one, so scenarios would see SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(prog="python -m conformance.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="a built-in target name or MODULE:ATTR")
    parser.add_argument("--kind", default=None, help="force the target kind (runner, run, loop)")
    args = parser.parse_args(argv)

    channel = Channel()
    _limit_core_dumps()
    try:
        import faulthandler

        faulthandler.enable(file=sys.stderr)
    except Exception:
        pass

    try:
        from conformance.interpreter import execute
        from conformance.protocol import PROTOCOL_VERSION
        from conformance.targets import TargetError, load_target
    except BaseException as exc:
        channel.send({"error": f"cannot import the interpreter: {_exception_text(exc)}"})
        return EXIT_START_FAILED
    try:
        try:
            target = load_target(args.target, args.kind)
        except TargetError as exc:
            channel.send({"error": _one_line(str(exc))})
            return EXIT_START_FAILED
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            # Loading a target decides nothing about SIGINT: scenarios start from the default.
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except BaseException as exc:
        channel.send({"error": f"cannot load target {args.target!r}: {_exception_text(exc)}"})
        return EXIT_START_FAILED

    _freeze_heap()
    worker = Worker(channel, target, execute)
    channel.send(
        {
            "ready": target.describe(),
            "protocol": PROTOCOL_VERSION,
            "lacks": list(target.lacks),
            "python": sys.version.split()[0],
            "implementation": sys.implementation.name,
            "executable": sys.executable,
            "pid": os.getpid(),
        }
    )
    status = worker.serve()
    if status == EXIT_DIRTY:
        # Leaked non-daemon threads would block a normal exit: leave at once.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # SIGINT sent to the worker itself between scenarios: stop quietly.
        sys.exit(130)
