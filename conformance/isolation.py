"""Driver side of process isolation: scenarios never run in the driver.

Each target lives in its own worker process (``python -m conformance.worker``,
see that module for the protocol). Every request has a deadline, so that
whatever a candidate does (hang, crash, print, leak threads, mangle signal
handlers) becomes an outcome to report instead of a broken harness:

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

Requests are pipelined: ``submit`` queues a request and returns at once, and
the worker reads the next one as soon as it has answered the last, so it never
waits for the driver (which meanwhile generates and judges scenarios). A
worker answers in order, so the oldest request in flight is the one running,
and its deadline counts from the moment the worker got to it. When a worker
has to go (HANG, CRASH, dirty), the requests queued behind the one that broke
it are sent again to its replacement: each request gets exactly one result.

Driver side: Python 3.11+, POSIX.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import select
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conformance.protocol import PROTOCOL_VERSION, missing
from conformance.scenario import Scenario, from_json, loads
from conformance.targets import KINDS, supports

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
#: Bytes written to a worker's input per system call.
WRITE_CHUNK = 1 << 16
#: A target spec that names a worker program of its own (any language; docs/protocol.md).
EXEC_PREFIX = "exec:"


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


def _checked_handshake(message: dict, what: str) -> dict:
    """A ``ready`` message, refused (``WorkerStartError``) if it is malformed or speaks another protocol."""
    ready = message.get("ready")
    if not isinstance(ready, dict) or ready.get("kind") not in KINDS:
        raise WorkerStartError(f"{what} sent a malformed handshake: 'ready' needs a 'kind' of {', '.join(KINDS)}")
    version = message.get("protocol", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise WorkerStartError(f"{what} speaks protocol {version!r}; this driver speaks {PROTOCOL_VERSION}")
    for field in ("implements", "lacks"):
        declared = message.get(field)
        if declared is not None and not (
            isinstance(declared, list) and all(isinstance(feature, str) for feature in declared)
        ):
            raise WorkerStartError(f"{what} sent a malformed handshake: {field!r} must be a list of strings")
    ready.setdefault("spec", "")
    ready.setdefault("version", "")
    return message


def split_spec(spec: str) -> tuple[str, str | None]:
    """``NAME@PYTHON`` → ``(NAME, PYTHON)``: the target, and the interpreter its worker runs under.

    ``PYTHON`` is a path or a command on ``PATH`` (``asyncio@python3.13``,
    ``reference@/usr/bin/pypy3``); without ``@`` the worker runs under the
    driver's own interpreter (None). Target names and ``MODULE:ATTR`` never
    contain ``@``; an ``exec:COMMAND`` spec is never split.
    """
    name, at, python = spec.rpartition("@")
    if not at or spec.startswith(EXEC_PREFIX):
        return spec, None
    if not name or not python:
        raise WorkerStartError(f"{spec!r}: expected NAME@PYTHON, e.g. asyncio@python3.13")
    return name, python


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


@dataclass
class _Request:
    """A request line in flight: queued for the worker, written to it, or running."""

    id: int
    line: bytes
    timeout: float
    #: Bytes of ``line`` the current worker has been given.
    written: int = 0


class WorkerProcess:
    """One worker process serving one target, restarted as needed.

    Not thread-safe; use one per thread. ``execute`` starts the worker lazily;
    ``start`` (or entering the context manager) starts it eagerly so that an
    unloadable target fails early with ``WorkerStartError``. ``submit`` and
    ``pump`` keep several requests in flight (see the module docstring).
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
        #: The ``ready`` part of the first handshake (the target's spec, kind and version).
        self.ready: dict[str, Any] | None = None
        #: Seconds the worker spent on the request whose result was taken last (None after HANG or CRASH).
        self.last_elapsed: float | None = None
        #: How many workers were started; every start after the first is a replacement.
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buffer = bytearray()
        self._next_id = 0
        #: Oldest first: the head is the request the worker is running (or about to).
        self._inflight: deque[_Request] = deque()
        self._results: dict[int, tuple[dict, float | None]] = {}
        #: When the worker got to the head request: its deadline counts from here.
        self._head_since = 0.0
        self._last_stderr = ""

    # -- life cycle

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None

    def command(self) -> list[str]:
        """Our worker module under ``self.python``; for ``exec:COMMAND``, that command as it is."""
        if self.spec.startswith(EXEC_PREFIX):
            return shlex.split(self.spec[len(EXEC_PREFIX) :])
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
        if self.ready is None:
            self.ready = self.info["ready"]
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
                            self.info = _checked_handshake(message, what)
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
        """Stop the worker (end of input, then kill its group) and reap it. Idempotent.

        Requests still in flight are dropped.
        """
        self._inflight.clear()
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
        """Kill the worker's process group and reap the worker; its return code.

        Requests in flight stay queued, to be sent again to the next worker.
        """
        proc, self._proc = self._proc, None
        self._buffer.clear()
        for request in self._inflight:
            request.written = 0
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

    def submit(self, message: dict, timeout: float) -> int:
        """Queue a request (from ``request``) with its deadline; returns its id. Does not wait."""
        line = (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")
        return self._submit_line(message["id"], line, timeout)

    def submit_scenario(self, scenario_field: bytes, timeout: float) -> int:
        """Queue a plain run of a scenario already encoded by ``encode_scenario``; returns its id."""
        self._next_id += 1
        line = b'{"id":%d,"scenario":%s}\n' % (self._next_id, scenario_field)
        return self._submit_line(self._next_id, line, timeout)

    def _submit_line(self, request_id: int, line: bytes, timeout: float) -> int:
        if not self._inflight:
            # An idle worker: what it writes from now on belongs to this request.
            self._reset_stderr()
            self._head_since = time.monotonic()
        self._inflight.append(_Request(request_id, line, timeout))
        try:
            self._flush()
        except BaseException:
            self._abandon()  # no worker would start, or we were interrupted mid-write
            raise
        return request_id

    def done(self, request_id: int) -> bool:
        return request_id in self._results

    def result(self, request_id: int) -> dict:
        """The reply or outcome of a finished request (once: it is forgotten); sets ``last_elapsed``."""
        reply, self.last_elapsed = self._results.pop(request_id)
        return reply

    def _flush(self) -> None:
        """Give the worker what its input pipe takes of the queued requests, starting a worker if none runs."""
        if not self._inflight:
            return
        if self._proc is None:
            self.start()
            self._head_since = time.monotonic()
        assert self._proc is not None and self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        for request in list(self._inflight):
            while request.written < len(request.line):
                chunk = memoryview(request.line)[request.written : request.written + WRITE_CHUNK]
                try:
                    request.written += os.write(fd, chunk)
                except BlockingIOError:
                    return
                except BrokenPipeError:
                    self._take_last_replies()
                    return

    def _take_last_replies(self) -> None:
        """The worker closed its input: file what it answered before it went, then what it left unanswered.

        A worker exits right after a dirty reply, possibly while the driver
        is still writing the requests queued behind it: that reply is in the
        pipe and must be taken as the reply it is, not turned into a CRASH.
        """
        if not self._wait_exited(EXIT_GRACE_S):
            self._finish_head(self._crash("the worker closed its input"))
            return
        while self._proc is not None and self._inflight:
            self._receive()  # at the end of its output, the oldest unanswered request is a CRASH

    def _unwritten(self) -> bool:
        return bool(self._inflight) and self._inflight[-1].written < len(self._inflight[-1].line)

    def _finish_head(self, result: dict, elapsed: float | None = None) -> None:
        """The head request is over: file its result; the worker moves on to the next one."""
        request = self._inflight.popleft()
        self._results[request.id] = (result, elapsed)
        self._head_since = time.monotonic()

    def _receive(self) -> None:
        """Called when the pipe is readable: file every reply it holds, or the outcome of a broken worker."""
        if not self._read():
            self._finish_head(self._crash("the worker closed its output", wait=EXIT_GRACE_S))
            return
        while self._inflight:
            line = self._pop_line()
            if line is None:
                if len(self._buffer) > MAX_LINE_BYTES:
                    self._finish_head(self._garbage(bytes(self._buffer[:200])))
                return
            reply = _parse(line)
            if reply is None or reply.get("id") != self._inflight[0].id:
                self._finish_head(self._garbage(line))
                return
            self._finish_head(reply, time.monotonic() - self._head_since)
            if "dirty" in reply:
                # The worker exits after a dirty reply; what was queued behind it goes to a fresh one.
                self._terminate(graceful=True)
                return

    def _check_deadline(self, now: float) -> None:
        if self._inflight and self._proc is not None and now >= self._deadline():
            self._finish_head(self._hang())

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
        timeout = self._inflight[0].timeout
        self._terminate()
        return {"outcome": "HANG", "timeout_s": timeout, "stderr_tail": self._last_stderr}

    def _deadline(self) -> float:
        return self._head_since + self._inflight[0].timeout

    def _abandon(self) -> None:
        """Forget every request in flight or answered; kill the worker if it was running one (its state is unknown)."""
        self._results.clear()
        if self._inflight:
            self._inflight.clear()
            if self._proc is not None:
                self._terminate()

    def supports(self, scenario: Any) -> bool:
        """Whether this worker's target can run ``scenario`` (a ``Scenario``, its JSON object or text).

        Its kind must allow the runner configuration, and a worker that
        declares what it implements (``conformance.protocol``) must implement
        every feature the scenario needs, and none it declares it lacks.
        """
        if self.ready is None:
            self.start()
        assert self.ready is not None and self.info is not None
        parsed = _scenario(scenario)
        config = parsed.runner
        if not supports(self.ready["kind"], config.mode, config.loop_factory):
            return False
        return not missing(self.info.get("implements"), parsed, self.info.get("lacks") or ())

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
        Requests submitted earlier are answered first.
        """
        request_id = self.submit(self.request(scenario_json, orders, expect), timeout)
        pump([self], lambda: self.done(request_id))
        return self.result(request_id)


def encode_scenario(value: Any) -> bytes:
    """The ``scenario`` field of a request, encoded once for any number of workers (bytes pass as they are)."""
    if isinstance(value, bytes):
        return value
    if hasattr(value, "to_json"):
        value = value.to_json()
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def pump(workers: Sequence[WorkerProcess], until: Callable[[], bool], deadline: float | None = None) -> None:
    """Serve the workers' pipes and deadlines until ``until()`` holds.

    Or until ``deadline`` (a ``time.monotonic()`` value) passes: a deadline in
    the past makes one pass that takes what the pipes hold without waiting.

    Writes queued requests as the pipes take them, files replies as they come,
    and turns a missed deadline into HANG and a dead worker into CRASH; the
    worker is then replaced, on the next pass, for the requests queued behind.
    """
    try:
        while not until():
            poller = select.poll()
            readers: dict[int, WorkerProcess] = {}
            writers: dict[int, WorkerProcess] = {}
            first_deadline = math.inf
            for worker in workers:
                worker._flush()  # starts a replacement worker where one is needed
                if not worker._inflight or worker._proc is None:
                    continue
                assert worker._proc.stdout is not None and worker._proc.stdin is not None
                readers[worker._proc.stdout.fileno()] = worker
                poller.register(worker._proc.stdout.fileno(), select.POLLIN)
                if worker._unwritten():
                    writers[worker._proc.stdin.fileno()] = worker
                    poller.register(worker._proc.stdin.fileno(), select.POLLOUT)
                first_deadline = min(first_deadline, worker._deadline())
            if until():
                return
            if not readers:
                if any(worker._inflight for worker in workers):
                    continue  # a worker broke while being written to: the next pass replaces it
                raise RuntimeError("waiting for a result that no request in flight will give")
            now = time.monotonic()
            wait = min(first_deadline - now, POLL_S)
            if deadline is not None:
                wait = min(wait, deadline - now)
            for fd, _ in poller.poll(max(0.0, wait) * 1000):
                if fd in readers:
                    if readers[fd]._proc is not None:
                        readers[fd]._receive()
                elif writers[fd]._proc is not None:
                    writers[fd]._flush()
            now = time.monotonic()
            for worker in readers.values():
                worker._check_deadline(now)
                worker._police_stderr()
            if deadline is not None and now >= deadline:
                return
    except BaseException:
        # Interrupted (Ctrl-C in the driver, or a replacement worker that would
        # not start): a request may be half written or its reply still to
        # come, so these workers' state is unknown. Replace them.
        for worker in workers:
            if worker._inflight:
                worker._abandon()
        raise


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


class WorkerPair:
    """A reference worker and a candidate worker, run side by side.

    ``reference`` and ``candidate`` are ``WorkerProcess`` objects or target
    specs (then ``options`` go to both ``WorkerProcess`` constructors). They
    are separate processes, each importing only its own target: a candidate
    that patches the interpreter as it is imported (nest_asyncio, gevent,
    trio-asyncio) never shares a process with the reference, and neither do
    their replacements.
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

    def submit(self, scenario_json: Any, timeout: float) -> tuple[int, int]:
        """Queue the scenario on both workers; the two request ids, for ``collect``."""
        if self.reference._proc is None or self.candidate._proc is None:
            self.start()
        field = encode_scenario(scenario_json)
        return self.reference.submit_scenario(field, timeout), self.candidate.submit_scenario(field, timeout)

    def collect(self, ids: tuple[int, int], deadline: float | None = None) -> tuple[dict, dict] | None:
        """Both results of ``submit``: waits for them (until ``deadline``: then None, the requests still pending)."""
        reference_id, candidate_id = ids
        self.wait(lambda: self.reference.done(reference_id) and self.candidate.done(candidate_id), deadline)
        if not (self.reference.done(reference_id) and self.candidate.done(candidate_id)):
            return None
        return self.reference.result(reference_id), self.candidate.result(candidate_id)

    def wait(self, until: Callable[[], bool], deadline: float | None = None) -> None:
        """Serve both workers until ``until()`` holds or ``deadline`` (monotonic) passes."""
        pump((self.reference, self.candidate), until, deadline)

    def check(self, scenario_json: Any, timeout: float) -> tuple[dict, dict]:
        """Run the scenario on both workers concurrently; ``(reference_reply, candidate_reply)``."""
        results = self.collect(self.submit(scenario_json, timeout))
        assert results is not None
        return results

    def run_candidate(self, scenario_json: Any, timeout: float, deadline: float | None = None) -> dict | None:
        """Run the scenario on the candidate alone (a re-run); its reply or outcome (None: ``deadline`` passed)."""
        request_id = self.candidate.submit_scenario(encode_scenario(scenario_json), timeout)
        self.wait(lambda: self.candidate.done(request_id), deadline)
        return self.candidate.result(request_id) if self.candidate.done(request_id) else None

    def candidate_supports(self, scenario: Any) -> bool:
        """Whether the candidate's kind of target can run ``scenario`` (starts the candidate the first time)."""
        return self.candidate.supports(scenario)

    def search(
        self,
        scenario_json: Any,
        orders: Sequence[Sequence[str]],
        expect: Any,
        timeout: float,
        deadline: float | None = None,
    ) -> dict | None:
        """Whether some cancellation order makes the reference observe ``expect`` (see ``WorkerProcess.execute``).

        None if ``deadline`` (monotonic) passed first.
        """
        request_id = self.reference.submit(self.reference.request(scenario_json, orders, expect), timeout)
        self.wait(lambda: self.reference.done(request_id), deadline)
        return self.reference.result(request_id) if self.reference.done(request_id) else None

    def abandon(self) -> None:
        """Drop every request in flight, killing the workers that were running one."""
        self.reference._abandon()
        self.candidate._abandon()

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
