"""The protocol's edges: what a scenario needs, what a worker declares, and ``exec:`` workers."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap

import pytest

from conformance.isolation import WorkerPair, WorkerProcess, WorkerStartError, split_spec
from conformance.protocol import features, missing
from conformance.scenario import (
    Close,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    Scenario,
    Spawn,
    TaskGraph,
    TaskSpec,
    Timeout,
    With,
    Yield,
)

TIMEOUT = 60.0

SIMPLE = Scenario(RunnerConfig("run"), (Run(TaskGraph((TaskSpec((Yield(), Return(3))),))),))


def test_features_name_everything_a_scenario_needs():
    scenario = Scenario(
        RunnerConfig("close", debug=True),
        (
            With(
                (
                    Run(
                        TaskGraph(
                            (
                                TaskSpec((Spawn(1), Timeout("never", (Yield(),))), finally_steps=(Yield(),)),
                                TaskSpec((Raise("ValueError"),), OnCancel("swallow")),
                            )
                        ),
                        context="copy",
                    ),
                )
            ),
            Close(),
        ),
    )
    assert features(scenario) == {
        "mode:close",
        "runner:debug=true",
        "call:with",
        "call:run",
        "call:run.context=copy",
        "call:close",
        "op:spawn",
        "op:timeout",
        "op:yield",
        "op:raise",
        "task:finally",
        "task:on_cancel=swallow",
    }
    assert features(SIMPLE) == {"mode:run", "call:run", "op:yield", "op:return"}


def test_missing_features_make_a_scenario_unsupported():
    assert missing(None, SIMPLE) == []
    assert missing(["mode:run", "call:run", "op:yield", "op:return"], SIMPLE) == []
    assert missing(["mode:run", "call:run", "op:yield"], SIMPLE) == ["op:return"]
    assert missing(None, SIMPLE, lacks=["op:return", "op:executor"]) == ["op:return"]
    assert missing(["mode:run", "call:run", "op:yield", "op:return"], SIMPLE, lacks=["op:yield"]) == ["op:yield"]


def test_a_worker_that_lacks_a_feature_gets_no_scenario_needing_it(tmp_path):
    worker = WorkerProcess(fake_worker(tmp_path, {"ready": {"kind": "run"}, "lacks": ["op:raise"]}))
    try:
        assert worker.supports(SIMPLE)
        assert not worker.supports(
            Scenario(RunnerConfig("run"), (Run(TaskGraph((TaskSpec((Raise("ValueError"),)),))),))
        )
    finally:
        worker.close()


def test_exec_specs_are_never_split_at_an_at_sign():
    assert split_spec("exec:node runner.mjs --tag a@b") == ("exec:node runner.mjs --tag a@b", None)
    assert split_spec("asyncio@python3.12") == ("asyncio", "python3.12")
    assert split_spec("asyncio") == ("asyncio", None)


def fake_worker(tmp_path, handshake: dict, body: str = "") -> str:
    """An ``exec:`` spec for a tiny program that answers ``handshake`` and then runs ``body``."""
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            print(json.dumps({handshake!r}), flush=True)
            """
        )
        + textwrap.dedent(body)
    )
    return "exec:" + shlex.join([sys.executable, str(script)])


@pytest.mark.parametrize(
    ("handshake", "words"),
    [
        ({"ready": {"kind": "runner"}, "protocol": 99}, "speaks protocol 99"),
        ({"ready": {"kind": "teapot"}}, "malformed handshake"),
        ({"ready": {"kind": "run"}, "implements": "everything"}, "'implements' must be a list"),
    ],
)
def test_a_worker_with_a_bad_handshake_is_refused(tmp_path, handshake, words):
    worker = WorkerProcess(fake_worker(tmp_path, handshake))
    with pytest.raises(WorkerStartError, match=words):
        worker.start()
    worker.close()


ECHO_OBSERVATION = """
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"id": request["id"], "observation": OBSERVATION}), flush=True)
"""


def test_an_exec_worker_declaring_a_subset_gets_only_what_it_implements(tmp_path):
    """Our own worker is the reference; the exec worker replays the reference's observation."""
    with WorkerProcess("reference.run") as reference:
        observation = reference.execute(SIMPLE, TIMEOUT)["observation"]
    handshake = {
        "ready": {"spec": "echo", "kind": "run", "version": "1"},
        "protocol": 1,
        "implements": sorted(features(SIMPLE)),
    }
    body = f"OBSERVATION = json.loads({json.dumps(observation)!r})\n" + ECHO_OBSERVATION
    pair = WorkerPair("reference.run", fake_worker(tmp_path, handshake, body))
    with pair:
        assert pair.candidate_supports(SIMPLE)
        failing = Scenario(RunnerConfig("run"), (Run(TaskGraph((TaskSpec((Raise("ValueError"),)),))),))
        assert not pair.candidate_supports(failing)
        reference_reply, candidate_reply = pair.check(SIMPLE, TIMEOUT)
        assert reference_reply["observation"] == candidate_reply["observation"] == observation


DIRTY_AND_GONE = """
import os
line = sys.stdin.readline()
request = json.loads(line)
print(json.dumps({"id": request["id"], "observation": {"calls": []}, "dirty": "a thread is still alive"}), flush=True)
os._exit(3)
"""


def test_a_reply_written_before_the_worker_left_is_taken_not_turned_into_a_crash(tmp_path):
    """A dirty worker exits at once; the driver may still be writing the next request when it does."""
    import time

    from conformance.isolation import pump

    worker = WorkerProcess(fake_worker(tmp_path, {"ready": {"kind": "runner"}}, DIRTY_AND_GONE))
    try:
        worker.start()
        pid = worker.pid
        first = worker.submit(worker.request(SIMPLE), TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while worker._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the worker has answered and exited; its reply is unread in the pipe
        second = worker.submit(worker.request(SIMPLE), TIMEOUT)  # writing to it: broken pipe
        pump([worker], lambda: worker.done(first) and worker.done(second))
        assert worker.result(first) == {"id": first, "observation": {"calls": []}, "dirty": "a thread is still alive"}
        # The request queued behind went to a fresh worker.
        assert worker.result(second)["observation"] == {"calls": []}
        assert worker.starts >= 2 and worker.pid != pid
    finally:
        worker.close()
