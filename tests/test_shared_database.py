"""Campaigns beyond one machine: fuzzing processes share their failures through Hypothesis's example database.

The fuzz tests are ordinary Hypothesis tests, so a divergence one machine
finds is saved in the example database and replayed first by every other
machine that shares it. Here the shared database is a real Redis server
(Debian's ``redis-server``, on loopback, nothing persisted) used through
``hypothesis.extra.redis.RedisExampleDatabase``. Two separate processes run
the same test (the candidate, a broken runner, against the reference through
a ``WorkerPair``): the first generates until it finds a divergence, which
Hypothesis saves; the second only replays the database (``Phase.reuse``, no
generation) and fails on its first example, with the same signature. A third
process, replaying another key prefix of the same server, finds nothing to
replay: the failure came from the shared database.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
CANDIDATE = "tests.fixtures.mutants:NoCancelOnClose"

FUZZER = '''\
"""One fuzzing process: the candidate against the reference, Hypothesis's database on a shared Redis."""
import json
import sys
import unittest

import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.extra.redis import RedisExampleDatabase

from conformance.differential import DIVERGED, check
from conformance.isolation import WorkerPair
from strategies import scenarios

port, mode, prefix, candidate = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4]
database = RedisExampleDatabase(redis.Redis(host="127.0.0.1", port=port), key_prefix=prefix)
phases = (Phase.reuse,) if mode == "replay" else (Phase.reuse, Phase.generate)
examples = []

with WorkerPair("reference", candidate) as pair:

    @settings(
        database=database,
        phases=phases,
        max_examples=500,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios("runner"))
    def test_candidate_agrees_with_reference(scenario):
        result = check(pair, scenario, 10.0)
        examples.append(result.signature)
        assert result.status != DIVERGED, result.signature

    try:
        test_candidate_agrees_with_reference()
        outcome = "passed"
    except AssertionError:
        outcome = "failed"
    except unittest.SkipTest:  # replaying only, and the database holds nothing for this test
        outcome = "nothing to replay"

print(json.dumps({"outcome": outcome, "examples": len(examples), "signatures": examples}))
'''


def _redis_server() -> str:
    """Debian's server binary; without it the test is skipped, saying how to get it."""
    found = shutil.which("redis-server")
    if not found:
        pytest.skip("no redis-server on PATH (Debian: apt-get install redis-server)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A throwaway Redis server on loopback: no snapshot, no append-only file, its own directory."""
    pytest.importorskip("redis", reason="the redis package (pip install 'runner-conformance[test]')")
    import redis

    binary, port = _redis_server(), _free_port()
    directory = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command + ["--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, server.stderr.read() if server.stderr else "redis-server exited"
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _fuzz(script: Path, port: int, mode: str, prefix: str) -> Dict[str, Any]:
    """One separate fuzzing process; its last line of output says what it did."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script), str(port), mode, prefix, CANDIDATE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_divergence_found_by_one_process_is_replayed_first_by_another(redis_port: int, tmp_path: Path) -> None:
    script = tmp_path / "fuzz_against_reference.py"
    script.write_text(FUZZER)

    first = _fuzz(script, redis_port, "generate", "campaign-1:")
    assert first["outcome"] == "failed", first
    found = [signature for signature in first["signatures"] if signature]
    assert found, first

    second = _fuzz(script, redis_port, "replay", "campaign-1:")
    assert second["outcome"] == "failed", second
    # Replaying only: its very first example diverges, with a signature the first process found.
    assert second["signatures"][0] in found, second
    assert second["examples"] <= 3, second  # the replayed example, and Hypothesis's final re-run of it

    elsewhere = _fuzz(script, redis_port, "replay", "campaign-2:")
    assert elsewhere == {"outcome": "nothing to replay", "examples": 0, "signatures": []}
