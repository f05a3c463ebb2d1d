"""Process isolation: workers, their protocol, and what the driver makes of misbehaving targets.

The targets under ``tests/fixtures/runners.py`` misbehave only when a scenario
asks for ``debug=True``, so each test can show a bad outcome and then a good
scenario on the replacement worker. Timeouts here are generous upper bounds,
except the one a HANG test waits out.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conformance.isolation import (
    AdaptiveTimeout,
    WorkerPair,
    WorkerProcess,
    WorkerStartError,
    adaptive_timeout,
)
from conformance.scenario import Return, Run, RunnerConfig, Scenario, Sigint, TaskGraph, TaskSpec, Yield

FIXTURES = "tests.fixtures.runners"
#: An upper bound for anything that should take milliseconds.
TIMEOUT = 60.0
#: How long a HANG test waits for a reply that never comes.
HANG_TIMEOUT = 1.5


def scenario(*steps, debug=None) -> Scenario:
    steps = steps or (Return(3),)
    return Scenario(RunnerConfig("with", debug), (Run(TaskGraph((TaskSpec(tuple(steps)),))),))


GOOD = scenario(Yield(), Return(3))
#: Asks the fixture runners to misbehave.
BAD = scenario(Return(3), debug=True)


def fixture(name: str) -> str:
    return f"{FIXTURES}:{name}"


def assert_reaped(pid: int) -> None:
    """``pid`` is no child of ours any more: neither running nor a zombie waiting for us."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def assert_gone(pid: int) -> None:
    """``pid`` (not our child) has died; it may linger as a zombie of whoever adopted it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} is still alive")


@pytest.fixture
def worker_factory():
    workers: list[WorkerProcess] = []

    def make(spec: str, **options) -> WorkerProcess:
        worker = WorkerProcess(spec, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


def test_handshake_and_a_scenario(worker_factory):
    worker = worker_factory("reference")
    info = worker.start()
    assert info["ready"] == {"spec": "reference", "kind": "runner", "version": "reference"}
    assert info["pid"] == worker.pid
    assert info["python"] == sys.version.split()[0]
    # Its own session and process group: a Ctrl-C at the driver's terminal does not reach it.
    assert os.getpgid(worker.pid) == worker.pid != os.getpgid(0)
    reply = worker.execute(GOOD, TIMEOUT)
    assert reply["id"] == 1 and isinstance(reply["observation"], dict), reply
    assert "dirty" not in reply
    assert worker.last_elapsed is not None
    # The JSON object and the canonical text are accepted as well as the Scenario.
    assert worker.execute(GOOD.to_json(), TIMEOUT)["observation"] == reply["observation"]
    assert worker.execute(GOOD.dumps(), TIMEOUT)["observation"] == reply["observation"]
    assert worker.starts == 1


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no-such-candidate", "unknown candidate 'no-such-candidate'"),
        ("tests.fixtures.no_such_module:Runner", "cannot import"),
        (fixture("NoSuchRunner"), "has no attribute"),
    ],
)
def test_unloadable_target_is_a_one_line_start_error(worker_factory, spec, words):
    worker = worker_factory(spec)
    with pytest.raises(WorkerStartError) as caught:
        worker.start()
    message = str(caught.value)
    assert words in message
    assert "\n" not in message and "Traceback" not in message
    assert not worker.alive


def test_hang_is_classified_and_the_worker_replaced(worker_factory):
    worker = worker_factory(fixture("HangRunner"))
    first_pid = worker.start()["pid"]
    outcome = worker.execute(BAD, HANG_TIMEOUT)
    assert outcome["outcome"] == "HANG" and outcome["timeout_s"] == HANG_TIMEOUT, outcome
    assert worker.last_elapsed is None
    assert_reaped(first_pid)
    # The child the hanging runner started went down with the worker's process group.
    grandchild = int(re.search(r"grandchild pid (\d+)", outcome["stderr_tail"]).group(1))
    assert_gone(grandchild)
    reply = worker.execute(GOOD, TIMEOUT)
    assert "observation" in reply, reply
    assert worker.pid != first_pid and worker.starts == 2


class _Interrupted(Exception):
    pass


def test_interrupted_wait_replaces_the_worker(worker_factory):
    """Ctrl-C in the driver while a reply is pending: the worker's state is unknown, so it goes."""
    worker = worker_factory(fixture("HangRunner"))
    first_pid = worker.start()["pid"]

    def interrupt(signum, frame):
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(_Interrupted):
            worker.execute(BAD, TIMEOUT)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not worker.alive
    assert_reaped(first_pid)
    reply = worker.execute(GOOD, TIMEOUT)
    assert reply["id"] == 2 and "observation" in reply, reply


@pytest.mark.parametrize(
    ("runner", "returncode", "signal_name", "stderr"),
    [
        ("ExitRunner", 7, None, "ExitRunner is leaving"),
        ("SegfaultRunner", -signal.SIGSEGV, "SIGSEGV", "Fatal Python error"),
    ],
)
def test_crash_is_classified_and_the_worker_replaced(worker_factory, runner, returncode, signal_name, stderr):
    worker = worker_factory(fixture(runner))
    first_pid = worker.start()["pid"]
    outcome = worker.execute(BAD, TIMEOUT)
    assert outcome["outcome"] == "CRASH", outcome
    assert outcome["returncode"] == returncode
    assert outcome["signal"] == signal_name
    assert stderr in outcome["stderr_tail"]
    assert_reaped(first_pid)
    reply = worker.execute(GOOD, TIMEOUT)
    assert "observation" in reply, reply
    assert worker.pid != first_pid


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to find the protocol pipe")
def test_garbage_on_the_protocol_channel_is_a_crash(worker_factory):
    worker = worker_factory(fixture("GarbageRunner"))
    first_pid = worker.start()["pid"]
    outcome = worker.execute(BAD, TIMEOUT)
    assert outcome["outcome"] == "CRASH", outcome
    assert "this is not a reply" in outcome["reason"]
    # It was alive and well; the SIGKILL that ended it is the driver's, not a crash signal.
    assert outcome["returncode"] is None and outcome["signal"] is None
    assert_reaped(first_pid)
    assert "observation" in worker.execute(GOOD, TIMEOUT)
    assert worker.pid != first_pid


@pytest.mark.parametrize(
    ("runner", "reason"),
    [
        ("ThreadLeakRunner", "leaked-by-runner"),
        ("SigintHandlerRunner", "SIGINT handler is _custom_sigint_handler"),
    ],
)
def test_dirty_worker_is_replaced(worker_factory, runner, reason):
    worker = worker_factory(fixture(runner))
    first_pid = worker.start()["pid"]
    reply = worker.execute(BAD, TIMEOUT)
    # The reply itself stands: the observation is still the candidate's.
    assert "observation" in reply, reply
    assert reason in reply["dirty"]
    assert not worker.alive
    assert_reaped(first_pid)
    again = worker.execute(GOOD, TIMEOUT)
    assert "observation" in again and "dirty" not in again, again
    assert worker.pid != first_pid and worker.starts == 2


def test_invalid_scenarios_get_error_replies(worker_factory):
    worker = worker_factory("reference")
    pid = worker.start()["pid"]
    reply = worker.execute("{not json", TIMEOUT)
    assert reply["error"].startswith("ScenarioError:") and "not valid JSON" in reply["error"], reply
    reply = worker.execute({"schema": 1, "runner": {"mode": "sideways"}, "calls": []}, TIMEOUT)
    assert "ScenarioError" in reply["error"] and "$.runner.mode" in reply["error"], reply
    reply = worker.execute([1, 2], TIMEOUT)
    assert "ScenarioError" in reply["error"], reply
    assert "observation" in worker.execute(GOOD, TIMEOUT)
    assert worker.pid == pid and worker.starts == 1


def test_exception_escaping_execute_is_an_error_reply(worker_factory):
    worker = worker_factory(fixture("FailingInitRunner"))
    pid = worker.start()["pid"]
    reply = worker.execute(BAD, TIMEOUT)
    assert reply["error"] == "SystemExit: FailingInitRunner refuses", reply
    assert "Traceback" in reply["traceback"]
    assert "observation" in worker.execute(GOOD, TIMEOUT)
    assert worker.pid == pid


def test_prints_do_not_corrupt_the_protocol(worker_factory):
    worker = worker_factory(fixture("NoisyRunner"))
    reply = worker.execute(GOOD, TIMEOUT)
    assert reply["observation"] != "forged by print" and isinstance(reply["observation"], dict), reply
    assert "raw bytes on fd 1" in worker.stderr_tail()
    assert "forged by print" in worker.stderr_tail()


def test_sigint_ignored_by_the_parent_does_not_reach_scenarios(worker_factory):
    probe = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"]
    sigint_scenario = scenario(Sigint(), Yield(), Return("done"))
    normal = worker_factory("asyncio")
    expected = normal.execute(sigint_scenario, TIMEOUT)["observation"]
    assert "KeyboardInterrupt" in json.dumps(expected)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # What a process started in the background sees...
        assert subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip() == "True"
        # ...and a worker started the same way.
        ignoring = worker_factory("asyncio")
        ignoring.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ignoring.execute(sigint_scenario, TIMEOUT)["observation"] == expected


def test_pair_runs_both_and_reports_each_outcome():
    with WorkerPair("reference", fixture("HangRunner")) as pair:
        reference, candidate = pair.check(GOOD, TIMEOUT)
        assert "observation" in reference and "observation" in candidate
        assert pair.candidate_supports(GOOD)
        reference, candidate = pair.check(BAD, HANG_TIMEOUT)
        assert "observation" in reference, reference
        assert candidate["outcome"] == "HANG"
        reference, candidate = pair.check(GOOD, TIMEOUT)
        assert "observation" in reference and "observation" in candidate
        assert pair.candidate.starts == 2 and pair.reference.starts == 1
        pids = [pair.reference.pid, pair.candidate.pid]
    for pid in pids:
        assert_reaped(pid)


def test_pair_search_tries_orders_on_the_reference():
    with WorkerPair("reference", "asyncio.run") as pair:
        assert not pair.candidate_supports(GOOD)
        expect = pair.reference.execute(GOOD, TIMEOUT)["observation"]
        reply = pair.search(GOOD, [["r0.t9"], []], expect, TIMEOUT)
        assert reply["found"] == ["r0.t9"] and reply["tried"] == 1, reply
        reply = pair.search(GOOD, [["r0.t9"], []], {"not": "an observation"}, TIMEOUT)
        assert reply["found"] is None and reply["tried"] == 2, reply


def test_close_leaves_no_zombies():
    pids = []
    worker = WorkerProcess(fixture("ExitRunner"))
    with worker:
        for _ in range(2):
            pids.append(worker.start()["pid"])
            assert worker.execute(BAD, TIMEOUT)["outcome"] == "CRASH"
        pids.append(worker.start()["pid"])
    assert not worker.alive
    worker.close()  # idempotent
    for pid in pids:
        assert_reaped(pid)


def test_worker_exits_cleanly_at_end_of_input():
    worker = WorkerProcess("reference")
    proc_pid = worker.start()["pid"]
    proc = worker._proc
    worker.close()
    assert proc.returncode == 0
    assert_reaped(proc_pid)


def _python39():
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3")))
    return found[-1] if found else None


@pytest.mark.skipif(_python39() is None, reason="no CPython 3.9 under pyenv")
def test_worker_runs_on_python_3_9(worker_factory):
    worker = worker_factory("reference", python=_python39())
    info = worker.start()
    assert info["python"].startswith("3.9.")
    assert "observation" in worker.execute(GOOD, TIMEOUT)


def test_adaptive_timeout():
    assert adaptive_timeout([]) == 30.0
    assert adaptive_timeout([0.001] * 100) == 1.0
    assert adaptive_timeout([0.1] * 99 + [10.0]) == pytest.approx(2.0)
    assert adaptive_timeout([0.1] * 98 + [10.0, 10.0]) == pytest.approx(200.0)
    timer = AdaptiveTimeout(window=3)
    for seconds in (1.0, None, 0.2, 0.2, 0.2):
        timer.record(seconds)
    assert timer.current() == pytest.approx(4.0)


# ------------------------------------------------------ the worker's own parts


def test_reply_lines_splice_encoded_values_as_they_are():
    from conformance.worker import Encoded, reply_line

    observation = {"calls": [{"log": ["r0.t0 start"], "outcome": {"returned": "3"}}], "end": {}}
    line = reply_line({"id": 7, "observation": Encoded(json.dumps(observation)), "dirty": "why"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"id": 7, "observation": observation, "dirty": "why"}
    assert json.loads(reply_line({"observation": Encoded("[1]")})) == {"observation": [1]}
    assert json.loads(reply_line({"id": 1, "text": "é\n"})) == {"id": 1, "text": "é\n"}
    assert reply_line({"id": 1, "text": "é"}).isascii()


def test_an_observation_that_is_not_json_is_an_error_reply():
    from conformance.worker import Worker

    worker = Worker(channel=None, target=None, execute=lambda scenario, target: {"value": float("nan")})
    result, dirty = worker.run(GOOD, None)
    assert dirty is None
    assert result["error"].startswith("the observation is not JSON: ValueError"), result


SETTLING = """
import gc, json, sys, weakref
sys.path.insert(0, sys.argv[1])
from conformance.worker import Worker, _freeze_heap

class Node:
    pass

kept = {}

def execute(scenario, target):
    cycle = Node()
    cycle.me = cycle
    kept["cycle"] = weakref.ref(cycle)
    kept["survivor"] = [Node()]  # outlives the scenario, as a candidate's cache would
    return {"calls": []}

_freeze_heap()
worker = Worker(channel=None, target=None, execute=execute)
gc.disable()  # only the worker collects from here on
result, dirty = worker.run(None, None)
tracked = {id(obj) for obj in gc.get_objects()}
print(json.dumps({
    "dirty": dirty,
    "cycle_collected": kept["cycle"]() is None,
    "survivor_frozen": id(kept["survivor"]) not in tracked and gc.get_freeze_count() > 0,
}))
"""


def test_the_worker_collects_and_freezes_what_a_scenario_leaves():
    """After each scenario the worker collects its garbage and freezes its survivors.

    Survivors left in the collector's generations would be walked by every
    collection of every later scenario (docs/performance.md); frozen, they
    are not. Run in a fresh interpreter: freezing this test process's heap
    would change how later tests collect.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", SETTLING, root], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"dirty": None, "cycle_collected": True, "survivor_frozen": True}
