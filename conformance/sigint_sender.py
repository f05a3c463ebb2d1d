"""Send a process SIGINT from outside, each time its thread blocks waiting for I/O, while asked to.

A standalone program (standard library only, no imports from this project), run
as ``python -I -S sigint_sender.py PID TID`` by ``conformance.outside_sigint``
and, embedded as text, by reproducer scripts. It is how a ``sigint_wait`` step
gets a SIGINT that arrives while the event loop is blocked in ``select()``,
from another process (so that a loop or runner that patches threads or the
``signal`` module cannot intercept it), at a moment decided by the program
rather than by timing:

* it fires only when thread TID of process PID is asleep in ``epoll_wait``,
  ``select`` or ``poll``, as ``/proc/PID/task/TID/wchan`` shows. An event loop
  sleeps there only when it has nothing ready to run; and in a scenario
  nothing but this signal can then make a task move on (executor work never
  wakes a task, and deadlines have either passed or never come). So wherever
  in that idle wait the signal lands, what happens next is the same;
* it fires once per idle wait: after a signal it waits until the thread has
  gone to sleep again (its count of voluntary context switches grew), so a
  second signal never overtakes the handling of the first.

Protocol, one line each way::

    <- "ready" | "unsupported <reason>"      (then it exits)
    -> "on" | "off" | "exit"                 ("on": fire when the thread is idle; "off": never)
    <- "ok"                                  (after each command, before anything else happens)

It exits on "exit", at the end of its input, or when PID is gone.
"""

import os
import select
import signal
import sys
import time

#: Kernel functions a thread sleeps in while blocked in epoll_wait, select or poll (over kernel
#: versions; the compiler may add a suffix such as ".constprop.0", which is dropped).
IDLE_WAITS = frozenset(
    {"do_epoll_wait", "ep_poll", "poll_schedule_timeout", "do_select", "core_sys_select", "do_sys_poll"}
)
#: How often the thread is looked at while firing is on.
POLL_S = 0.0005
#: How long to look for a sleeping thread before deciding that wchan is not readable here.
SUPPORT_CHECK_S = 2.0


def read_text(path):
    with open(path) as handle:
        return handle.read()


def wait_state(task_dir):
    """(whether the thread is asleep in an idle wait, its count of voluntary context switches)."""
    wchan = read_text(f"{task_dir}/wchan").strip().split(".")[0]
    for line in read_text(f"{task_dir}/status").splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return wchan in IDLE_WAITS, int(line.split()[1])
    raise OSError("no voluntary_ctxt_switches in status")


def can_watch(task_dir):
    """Whether the kernel shows where the thread sleeps (it is asleep now: its parent waits for our reply)."""
    deadline = time.monotonic() + SUPPORT_CHECK_S
    while time.monotonic() < deadline:
        try:
            wait_state(task_dir)
            if read_text(f"{task_dir}/wchan").strip() not in ("", "0"):
                return True
        except (OSError, ValueError):
            return False
        time.sleep(0.001)
    return False


def reply(text):
    os.write(1, (text + "\n").encode("ascii"))


def serve(pid, task_dir):
    firing = False
    fired_at = -1  # the switch count of the idle wait last fired into
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], POLL_S if firing else 1.0)
        if ready:
            data = os.read(0, 1024)
            if not data:
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                command = line.decode("ascii", "replace").strip()
                if command == "exit":
                    return
                firing = command == "on"
                reply("ok")
            continue
        try:
            idle, switches = wait_state(task_dir)
            os.kill(pid, 0)
        except (OSError, ValueError):
            return  # the process is gone
        if firing and idle and switches > fired_at:
            fired_at = switches
            os.kill(pid, signal.SIGINT)


def main(argv):
    pid, tid = int(argv[1]), int(argv[2])
    task_dir = f"/proc/{pid}/task/{tid}"
    if not can_watch(task_dir):
        reply("unsupported: this system does not show where a thread waits (/proc/PID/task/TID/wchan)")
        return 0
    reply("ready")
    serve(pid, task_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
