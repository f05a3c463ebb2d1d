"""Driver side of process isolation: scenarios never run in the driver.

Each target lives in its own worker process (``python -m conformance.worker``,
see that module for the protocol). The driver sends one scenario at a time and
waits for the reply with a deadline, so that whatever a candidate does (hang,
crash, print, leak threads, mangle signal handlers) becomes an outcome to
report instead of a broken harness:

* a reply: ``{"id", "observation"}``, ``{"id", "found", "tried"}`` or
  ``{"id", "error", "traceback"}``, possibly with ``"dirty"`` (the worker then
  exits and is replaced before the next scenario);
* ``{"outcome": "HANG", "timeout_s", ...}``: no reply by the deadline; the
  worker's process group is killed;
* ``{"outcome": "CRASH", "returncode", "signal", "stderr_tail", ...}``: the
  worker died or wrote something that is not a reply.

After HANG, CRASH or a dirty reply the next request starts a fresh worker.
Workers run in their own session, so a Ctrl-C typed at the driver's terminal
does not reach them, and killing their process group kills their children.

Driver side: Python 3.11+, POSIX.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from conformance.scenario import Scenario, from_json, loads
from conformance.targets import supports

#: The repository root: ``conformance``, ``reference`` and the tests' fixtures import from here.
ROOT = Path(__file__).resolve().parent.parent

#: How long a worker gets to import its target and answer the handshake.
START_TIMEOUT_S = 60.0
#: How long a worker that was told to stop gets before its group is killed.
EXIT_GRACE_S = 2.0
#: Characters of stderr kept in crash reports.
STDERR_TAIL_CHARS = 4000
#: The worker's stderr file is emptied if a single scenario writes more than this.
STDERR_CAP_BYTES = 16 * 1024 * 1024
#: A reply line longer than this is garbage.
MAX_LINE_BYTES = 256 * 1024 * 1024
#: How often a wait wakes up to police the stderr file.
POLL_S = 0.25


class WorkerStartError(Exception):
    """A worker could not load its target or did not answer the handshake; the message is one line."""


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ------------------------------------------------------------ timeouts


def adaptive_timeout(
    samples: Iterable[float], *, floor: float = 1.0, factor: float = 20.0, default: float = 30.0
) -> float:
    """A per-scenario timeout from recent healthy reply times: ``max(floor, factor * p99)``.

    With no samples yet, ``default`` (at least ``floor``): the first scenarios
    also pay for imports and warm-up.
    """
    ordered = sorted(samples)
    if not ordered:
        return max(floor, default)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return max(floor, factor * p99)


class AdaptiveTimeout:
    """A rolling window of healthy reply times and the timeout they suggest.

    Record only replies (not HANG or CRASH outcomes), e.g. from
    ``WorkerProcess.last_elapsed``; ``current()`` is what to pass as ``timeout``.
    """

    def __init__(self, window: int = 500, **options: float) -> None:
        self.samples: deque[float] = deque(maxlen=window)
        self.options = options

    def record(self, seconds: float | None) -> None:
        if seconds is not None:
            self.samples.append(seconds)

    def current(self) -> float:
        return adaptive_timeout(self.samples, **self.options)


# ------------------------------------------------------------ processes

_RESOLVED_PYTHONS: dict[str, str] = {}


def resolve_python(python: str | None) -> str:
    """The real interpreter binary for ``python``: ``sys.executable`` by default, never a pyenv shim.

    A shim is a script that picks an interpreter from the environment and the
    current directory each time; the worker must be the interpreter itself
    (its pid is the one killed, and every restart must use the same version).
    """
    if python is None:
        return sys.executable
    if python in _RESOLVED_PYTHONS:
        return _RESOLVED_PYTHONS[python]
    found = shutil.which(python) or python
    try:
        out = subprocess.run(
            [found, "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise WorkerStartError(f"cannot run Python {python!r}: {_one_line(str(exc))}") from None
    resolved = out or found
    _RESOLVED_PYTHONS[python] = resolved
    return resolved


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the worker has exited, without reaping it where the platform allows.

    While the leader is an unreaped zombie its pid, and so its process group
    id, cannot be reused: killing the group then cannot hit a stranger.
    """
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class WorkerProcess:
    """One worker process serving one target, restarted as needed.

    Not thread-safe; use one per thread. ``execute`` starts the worker lazily;
    ``start`` (or entering the context manager) starts it eagerly so that an
    unloadable target fails early with ``WorkerStartError``.
    """

    def __init__(
        self,
        spec: str,
        kind: str | None = None,
        *,
        python: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self.spec = spec
        self.kind = kind
        self.python = resolve_python(python)
        self.cwd = os.fspath(cwd) if cwd is not None else os.getcwd()
        self.env = env
        self.start_timeout = start_timeout
        #: The handshake of the current worker: ``{"ready": ..., "python": ..., "pid": ...}``.
        self.info: dict[str, Any] | None = None
        #: Seconds between sending the last request and its reply (None after HANG or CRASH).
        self.last_elapsed: float | None = None
        #: How many workers were started; every start after the first is a replacement.
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = bytearray()
        self._next_id = 0
        self._pending: int | None = None
        self._sent_at = 0.0
        self._timeout = 0.0
        self._last_stderr = ""

    # -- life cycle

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "conformance.worker", "--target", self.spec]
        if self.kind is not None:
            cmd += ["--kind", self.kind]
        return cmd

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        paths = [str(ROOT), self.cwd] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env

    def start(self) -> dict[str, Any]:
        """Start the worker if it is not running; returns the handshake."""
        if self._proc is None:
            self._spawn()
            self._handshake(time.monotonic() + self.start_timeout)
        assert self.info is not None
        return self.info

    def _spawn(self) -> None:
        stderr = tempfile.TemporaryFile(prefix="conformance-worker-", suffix=".stderr")
        # Appending: after the driver empties the file, the worker writes from its start again.
        flags = fcntl.fcntl(stderr.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(stderr.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        try:
            proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.cwd,
                env=self._environment(),
                start_new_session=True,
            )
        except OSError as exc:
            stderr.close()
            raise WorkerStartError(f"cannot start a worker with {self.python}: {_one_line(str(exc))}") from None
        assert proc.stdin is not None and proc.stdout is not None
        os.set_blocking(proc.stdin.fileno(), False)
        os.set_blocking(proc.stdout.fileno(), False)
        self._proc, self._stderr = proc, stderr
        self._buffer.clear()
        self._pending = None
        self.info = None
        self.starts += 1

    def _handshake(self, deadline: float) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        noise: list[str] = []
        what = f"worker for {self.spec!r}"
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._proc.stdout.fileno(), selectors.EVENT_READ)
                while True:
                    line = self._pop_line()
                    if line is not None:
                        message = _parse(line)
                        if message is not None and "ready" in message:
                            self.info = message
                            return
                        if message is not None and "error" in message:
                            raise WorkerStartError(_one_line(str(message["error"])))
                        # Something printed before the worker protected its stdout (a .pth file, say).
                        noise.append(line.decode("utf-8", "replace"))
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise WorkerStartError(f"{what} did not answer within {self.start_timeout:g} s")
                    if selector.select(remaining) and not self._read():
                        exited = self._wait_exited(EXIT_GRACE_S)
                        rc = self._terminate()
                        last = _one_line((self._last_stderr.strip().splitlines() or noise or ["no output"])[-1])
                        if not exited:
                            raise WorkerStartError(f"{what} closed its output before it was ready: {last}")
                        status = f"signal {_signal_name(rc)}" if rc is not None and rc < 0 else f"code {rc}"
                        raise WorkerStartError(f"{what} exited with {status} before it was ready: {last}")
        except BaseException:
            self._terminate()
            raise

    def close(self) -> None:
        """Stop the worker (end of input, then kill its group) and reap it. Idempotent."""
        self._terminate(graceful=True)

    def __enter__(self) -> WorkerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A forgotten worker must not outlive the driver; close() is the proper way.
        if getattr(self, "_proc", None) is not None:
            try:
                self._terminate()
            except Exception:
                pass

    def _wait_exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the worker to exit on its own (it is not reaped)."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while not _has_exited(self._proc):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def _terminate(self, graceful: bool = False) -> int | None:
        """Kill the worker's process group and reap the worker; its return code."""
        proc, self._proc = self._proc, None
        self._pending = None
        self._buffer.clear()
        if proc is None:
            return None
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.close()  # end of input: a healthy worker exits 0
        except OSError:
            pass
        if graceful:
            deadline = time.monotonic() + EXIT_GRACE_S
            while not _has_exited(proc) and time.monotonic() < deadline:
                time.sleep(0.005)
        # Read the tail only now: a dying worker may still be writing (faulthandler, say).
        self._last_stderr = self.stderr_tail_of(self._stderr)
        # The leader is alive or an unreaped zombie, so its group id is still ours to kill:
        # this also ends whatever the worker started (threads die with it, processes with the group).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        returncode = proc.wait()
        proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return returncode

    # -- stderr

    def stderr_tail(self) -> str:
        """The end of what the worker wrote to stderr (and stdout) since the last request.

        After the worker is gone, what it had written last.
        """
        if self._stderr is None:
            return self._last_stderr
        return self.stderr_tail_of(self._stderr)

    @staticmethod
    def stderr_tail_of(file: IO[bytes] | None, chars: int = STDERR_TAIL_CHARS) -> str:
        if file is None:
            return ""
        fd = file.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - 4 * chars)
        return os.pread(fd, size - start, start).decode("utf-8", "replace")[-chars:]

    def _reset_stderr(self) -> None:
        if self._stderr is not None:
            os.ftruncate(self._stderr.fileno(), 0)

    def _police_stderr(self) -> None:
        if self._stderr is not None and os.fstat(self._stderr.fileno()).st_size > STDERR_CAP_BYTES:
            os.ftruncate(self._stderr.fileno(), 0)
            os.write(self._stderr.fileno(), b"[conformance: stderr truncated, over the size cap]\n")

    # -- the protocol

    def _read(self) -> bool:
        """Read what the pipe has; False at end of file."""
        assert self._proc is not None and self._proc.stdout is not None
        try:
            chunk = os.read(self._proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _pop_line(self) -> bytes | None:
        index = self._buffer.find(b"\n")
        if index < 0:
            return None
        line = bytes(self._buffer[:index])
        del self._buffer[: index + 1]
        return line

    def request(self, scenario_json: Any, orders: Sequence[Sequence[str]] | None = None, expect: Any = None) -> dict:
        """The request message for a scenario (a ``Scenario``, its JSON object, or its text)."""
        if hasattr(scenario_json, "to_json"):
            scenario_json = scenario_json.to_json()
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "scenario": scenario_json}
        if orders is not None:
            message["orders"] = [list(order) for order in orders]
            message["expect"] = expect
        return message

    def _send(self, message: dict, timeout: float) -> dict | None:
        """Start a request; an outcome if it could not be sent, else None (the reply is pending)."""
        data = memoryview((json.dumps(message, separators=(",", ":")) + "\n").encode("ascii"))
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._reset_stderr()
        self.last_elapsed = None
        self._pending = message["id"]
        self._timeout = timeout
        self._sent_at = time.monotonic()
        deadline = self._sent_at + timeout
        fd = self._proc.stdin.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_WRITE)
            while data:
                try:
                    written = os.write(fd, data)
                except BlockingIOError:
                    written = 0
                except BrokenPipeError:
                    return self._crash("the worker closed its input", wait=EXIT_GRACE_S)
                data = data[written:]
                if data:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return self._hang()
                    selector.select(remaining)
        return None

    def _receive(self) -> dict | None:
        """Called when the pipe is readable: the reply or an outcome, or None if more is to come."""
        if not self._read():
            return self._crash("the worker closed its output", wait=EXIT_GRACE_S)
        line = self._pop_line()
        if line is None:
            if len(self._buffer) > MAX_LINE_BYTES:
                return self._garbage(bytes(self._buffer[:200]))
            return None
        reply = _parse(line)
        if reply is None or reply.get("id") != self._pending:
            return self._garbage(line)
        self.last_elapsed = time.monotonic() - self._sent_at
        self._pending = None
        if "dirty" in reply:
            self._terminate(graceful=True)
        return reply

    def _garbage(self, line: bytes) -> dict:
        return self._crash(f"not a reply on the protocol channel: {line[:200].decode('utf-8', 'replace')!r}")

    def _crash(self, reason: str, wait: float = 0.0) -> dict:
        """The worker died (or must die: it broke the protocol); reap it and describe how it ended."""
        exited = self._wait_exited(wait)
        returncode = self._terminate()
        if not exited:
            # Still alive when we gave up on it: the code is our SIGKILL, not its doing.
            returncode, reason = None, reason + " (killed)"
        return {
            "outcome": "CRASH",
            "returncode": returncode,
            "signal": _signal_name(returncode),
            "stderr_tail": self._last_stderr,
            "reason": reason,
        }

    def _hang(self) -> dict:
        self._terminate()
        return {"outcome": "HANG", "timeout_s": self._timeout, "stderr_tail": self._last_stderr}

    def _deadline(self) -> float:
        return self._sent_at + self._timeout

    def supports(self, scenario: Any) -> bool:
        """Whether this worker's target can run ``scenario`` (a ``Scenario``, its JSON object or text)."""
        kind = self.start()["ready"]["kind"]
        config = _scenario(scenario).runner
        return supports(kind, config.mode, config.loop_factory)

    def execute(
        self,
        scenario_json: Any,
        timeout: float,
        orders: Sequence[Sequence[str]] | None = None,
        expect: Any = None,
    ) -> dict:
        """Run one scenario in the worker; the reply, or a HANG or CRASH outcome.

        With ``orders`` (and ``expect``), the worker runs the scenario once per
        cancellation order and replies ``{"found": order | None, "tried": k}``.
        """
        return _exchange([(self, self.request(scenario_json, orders, expect))], timeout)[0]


def _scenario(value: Any) -> Scenario:
    if isinstance(value, Scenario):
        return value
    if isinstance(value, str):
        return loads(value)
    return from_json(value)


def _parse(line: bytes) -> dict | None:
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return message if isinstance(message, dict) else None


def _exchange(requests: list[tuple[WorkerProcess, dict]], timeout: float) -> list[dict]:
    """Send each worker its request, then wait for all replies under one deadline."""
    results: list[dict | None] = [None] * len(requests)
    waiting: dict[int, int] = {}  # index -> fd
    try:
        for index, (worker, message) in enumerate(requests):
            outcome = worker._send(message, timeout)
            if outcome is not None:
                results[index] = outcome
            else:
                assert worker._proc is not None and worker._proc.stdout is not None
                waiting[index] = worker._proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            for index, fd in waiting.items():
                selector.register(fd, selectors.EVENT_READ, index)
            while waiting:
                deadline = min(requests[index][0]._deadline() for index in waiting)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    for index in list(waiting):
                        worker = requests[index][0]
                        if worker._deadline() <= time.monotonic():
                            selector.unregister(waiting.pop(index))
                            results[index] = worker._hang()
                    continue
                for key, _ in selector.select(min(remaining, POLL_S)):
                    index = key.data
                    outcome = requests[index][0]._receive()
                    if outcome is not None:
                        selector.unregister(waiting.pop(index))
                        results[index] = outcome
                for index in waiting:
                    requests[index][0]._police_stderr()
    except BaseException:
        # Interrupted (Ctrl-C in the driver, or a replacement worker that would
        # not start): a request may be half written or its reply still to
        # come, so these workers' state is unknown. Replace them.
        for worker, _ in requests:
            if worker._pending is not None:
                worker._terminate()
        raise
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


class WorkerPair:
    """A reference worker and a candidate worker, run side by side.

    ``reference`` and ``candidate`` are ``WorkerProcess`` objects or target
    specs (then ``options`` go to both ``WorkerProcess`` constructors).
    """

    def __init__(self, reference: WorkerProcess | str, candidate: WorkerProcess | str, **options: Any) -> None:
        self.reference = reference if isinstance(reference, WorkerProcess) else WorkerProcess(reference, **options)
        try:
            self.candidate = candidate if isinstance(candidate, WorkerProcess) else WorkerProcess(candidate, **options)
        except BaseException:
            self.reference.close()
            raise

    def start(self) -> tuple[dict, dict]:
        """Start both workers (their start-ups overlap); returns both handshakes."""
        workers = (self.reference, self.candidate)
        try:
            deadlines = []
            for worker in workers:
                if worker._proc is None:
                    worker._spawn()
                deadlines.append(time.monotonic() + worker.start_timeout)
            for worker, deadline in zip(workers, deadlines):
                if worker.info is None:
                    worker._handshake(deadline)
        except BaseException:
            self.close()
            raise
        return self.reference.start(), self.candidate.start()

    def check(self, scenario_json: Any, timeout: float) -> tuple[dict, dict]:
        """Run the scenario on both workers concurrently; ``(reference_reply, candidate_reply)``."""
        if self.reference._proc is None or self.candidate._proc is None:
            self.start()
        reference, candidate = _exchange(
            [
                (self.reference, self.reference.request(scenario_json)),
                (self.candidate, self.candidate.request(scenario_json)),
            ],
            timeout,
        )
        return reference, candidate

    def candidate_supports(self, scenario: Any) -> bool:
        """Whether the candidate's kind of target can run ``scenario`` (starts the candidate)."""
        return self.candidate.supports(scenario)

    def search(self, scenario_json: Any, orders: Sequence[Sequence[str]], expect: Any, timeout: float) -> dict:
        """Whether some cancellation order makes the reference observe ``expect`` (see ``WorkerProcess.execute``)."""
        return self.reference.execute(scenario_json, timeout, orders=orders, expect=expect)

    def close(self) -> None:
        try:
            self.reference.close()
        finally:
            self.candidate.close()

    def __enter__(self) -> WorkerPair:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
