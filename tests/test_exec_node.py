"""A worker in another language: the JavaScript runner of examples/exec-node, through ``exec:``.

It proves the protocol end to end: a program that is not Python, declaring the subset it
implements, is compared with the reference on generated scenarios; what it does not implement
is counted as unsupported; and a deliberately wrong variant of it is caught.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import scenario as model
from conformance.differential import DIVERGED, SAME, check
from conformance.isolation import WorkerPair, WorkerProcess
from conformance.protocol import PROTOCOL_VERSION, features
from conformance.scenario import Return, Run, RunnerConfig, Scenario, Spawn, TaskGraph, TaskSpec, Yield

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "exec-node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node (Node.js 20 or newer) is not on PATH: the exec:node example worker cannot run"
)

TIMEOUT = 60.0

#: Main spawns a child that is still running when main returns: asyncio.run cancels it (K-1).
LEFTOVER = Scenario(
    RunnerConfig("run"), (Run(TaskGraph((TaskSpec((Spawn(1), Return(1))), TaskSpec((Yield(), Yield()))))),)
)


def exec_spec(script: str) -> str:
    return "exec:" + shlex.join([str(NODE), str(EXAMPLE / script)])


def conformance(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def vocabulary() -> set:
    """Every word a worker may declare (the vocabulary of conformance/protocol.py, over the scenario model)."""
    words = {f"mode:{mode}" for mode in model.MODES}
    words |= {f"call:{call.call}" for call in model.CALL_TYPES}
    words |= {f"call:run.context={context}" for context in model.CONTEXTS if context != "runner"}
    words |= {f"op:{step.op}" for step in model.STEP_TYPES}
    words |= {f"task:on_cancel={action}" for action in model.CANCEL_ACTIONS if action != "propagate"}
    words.add("task:finally")
    domains = {
        "debug": (True, False),
        "loop_factory": (True,),
        "sigint_handler": model.SIGINT_HANDLERS,
        "thread": model.THREADS,
        "loop_fails": getattr(model, "LOOP_FAILURES", ()),
        "task_factory": getattr(model, "TASK_FACTORIES", ()),
    }
    for field in dataclasses.fields(RunnerConfig):
        words |= {f"runner:{field.name}={json.dumps(v)}" for v in domains.get(field.name, ()) if v != field.default}
    return words


def test_the_handshake_declares_only_words_of_the_protocol_vocabulary():
    with WorkerProcess(exec_spec("runner.mjs")) as worker:
        info = worker.start()
    assert info["ready"]["kind"] == "run"
    assert info.get("protocol", 1) == PROTOCOL_VERSION
    implements = info["implements"]
    assert len(implements) == len(set(implements)), "each feature is declared once"
    assert {"mode:run", "call:run", "op:yield", "op:spawn", "op:await", "op:raise"} <= set(implements)
    unknown = sorted(set(implements) - vocabulary())
    assert not unknown, f"not in the vocabulary of conformance/protocol.py: {unknown}"
    # Runner options are spelled exactly as protocol.features() spells what a scenario needs.
    for word in implements:
        if word.startswith("runner:"):
            name, _, value = word[len("runner:") :].partition("=")
            config = dataclasses.replace(RunnerConfig("run"), **{name: json.loads(value)})
            assert word in features(Scenario(config, LEFTOVER.calls)), word


def test_the_node_runner_conforms_on_what_it_implements(tmp_path):
    done = conformance(
        "run",
        "--candidate",
        exec_spec("runner.mjs"),
        "--examples",
        "300",
        "--seed",
        "1",
        "--json",
        "out.json",
        "--report",
        "out.md",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["divergences"] == [] and report["flaky"] == [] and report["invalid"] == []
    assert report["candidate"] == "node-runner" and report["candidate_info"]["kind"] == "run"
    statuses = report["statuses"]
    assert statuses.get("same", 0) >= 100, statuses
    # It implements a subset: some scenarios need more (a SIGINT from another process, sigint_wait).
    assert statuses.get("unsupported", 0) > 0, statuses
    assert "no divergence" in done.stdout


def test_a_leftover_task_is_cancelled_as_the_reference_does_and_the_broken_variant_is_not():
    with WorkerPair("reference.run", exec_spec("runner.mjs")) as pair:
        assert check(pair, LEFTOVER, TIMEOUT).status == SAME
    with WorkerPair("reference.run", exec_spec("broken-runner.mjs")) as pair:
        result = check(pair, LEFTOVER, TIMEOUT)
    assert result.status == DIVERGED
    assert result.signature == "K-1 leftover tasks"
    assert "r0.t1 cancelled CancelledError()" in result.reference["calls"][0]["log"]
    assert "r0.t1 cancelled CancelledError()" not in result.candidate["calls"][0]["log"]


def test_a_broken_node_runner_is_caught_as_a_divergence(tmp_path):
    done = conformance(
        "run",
        "--candidate",
        exec_spec("broken-runner.mjs"),
        "--examples",
        "100",
        "--seed",
        "1",
        "--json",
        "out.json",
        "--report",
        "out.md",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    signatures = {group["signature"] for group in report["divergences"]}
    assert "K-1 leftover tasks" in signatures, signatures
    assert all(group["reproducer"].startswith("# No standalone Python script") for group in report["divergences"])
