"""SIGINT from another process while the loop waits: the client side of ``conformance.sigint_sender``.

A ``sigint_wait`` step (``conformance.scenario.SigintWait``) makes the main
task wait for a future that only a SIGINT can release and asks for a SIGINT
"from outside, once the loop has nothing else to do". ``OutsideSigint`` starts
the sender program once per scenario, at the first such step, and switches it
on while at least one step waits *and* the program is inside a runner call
(between calls the driver's own code runs, and no signal must reach it).

The interpreter must stay deterministic (see ``conformance.interpreter``):
the sender fires only into an idle wait of this process's main thread, one
signal per wait, so the signal's effect never depends on timing. Where the
kernel does not show where a thread waits, ``start()`` says so and the step is
skipped, on every side alike.

Execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import IO, Optional

#: The sender program, run by path so that it imports nothing from this project.
SENDER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigint_sender.py")


class OutsideSigint:
    """One sender process for one scenario, switched on and off by ``arm``/``disarm`` and ``resume``/``pause``."""

    def __init__(self) -> None:
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.supported: Optional[bool] = None
        self.waiting = 0  # sigint_wait steps waiting now
        self.in_call = False  # whether the program is inside a runner call
        self.firing = False  # what the sender was last told

    def start(self) -> bool:
        """Start the sender if needed (from the loop's thread, the main one); whether it can work here."""
        if self.supported is None:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-S", SENDER_PATH, str(os.getpid()), str(threading.get_native_id())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                self.supported = self._read() == "ready"
            except OSError:
                self.supported = False
            if not self.supported:
                self.close()
        return bool(self.supported)

    def arm(self) -> None:
        self.waiting += 1
        self._update()

    def disarm(self) -> None:
        self.waiting -= 1
        self._update()

    def resume(self) -> None:
        """The program enters a runner call."""
        self.in_call = True
        self._update()

    def pause(self) -> None:
        """The program leaves a runner call: the driver's own code must not be interrupted."""
        self.in_call = False
        self._update()

    def close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            self._write(process.stdin, "exit")
        except OSError:
            pass
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _update(self) -> None:
        firing = self.waiting > 0 and self.in_call
        if self.process is None or firing == self.firing:
            return
        self._write(self.process.stdin, "on" if firing else "off")
        if self._read() != "ok":
            raise RuntimeError("the SIGINT sender stopped answering")
        self.firing = firing

    @staticmethod
    def _write(stream: Optional[IO[bytes]], command: str) -> None:
        assert stream is not None
        stream.write(command.encode("ascii") + b"\n")
        stream.flush()

    def _read(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.readline().decode("ascii", "replace").strip()
