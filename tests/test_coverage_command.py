"""``conformance coverage``: output and JSON shape, exit codes, and what it counts as missing.

The command runs as a user runs it (a subprocess), except where a test has
to make the reference fail: then it runs in this process with
``conformance.interpreter.execute`` replaced, which is what the measurement
calls for every scenario.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import interpreter
from conformance.campaign import generate
from conformance.clauses import DEFAULT_SPEC, NOT_APPLICABLE, clause_ids
from conformance.cli import main
from strategies import scenarios

ROOT = Path(__file__).resolve().parents[1]


def conformance(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_json_names_every_clause_of_the_spec_once_and_agrees_with_the_exit_code(tmp_path):
    done = conformance("coverage", "--examples", "30", "--seed", "4", "--json", "out.json", cwd=tmp_path)
    document = json.loads((tmp_path / "out.json").read_text())
    assert done.returncode == (0 if document["complete"] else 1), done.stdout + done.stderr
    assert [entry["id"] for entry in document["clauses"]] == clause_ids()
    assert document["examples"] == 30 and document["seed"] == 4 and not document["internal_errors"]
    assert document["runs"] >= 30 * len(document["versions"])
    for entry in document["clauses"]:
        assert 0 <= entry["examples"] <= 30
        if entry["id"] in NOT_APPLICABLE:
            assert entry["status"] == "not applicable" and entry["reason"] == NOT_APPLICABLE[entry["id"]]
        else:
            assert entry["status"] == ("exercised" if entry["examples"] else "missing")
            assert bool(entry["versions"]) == bool(entry["examples"])
    assert document["missing_clauses"] == [e["id"] for e in document["clauses"] if e["status"] == "missing"]
    reference = document["reference"]
    assert set(reference["missing"]) <= {"reference/__init__.py", "reference/runner.py", "reference/versions.py"}
    assert reference["complete"] == (not reference["missing"])
    assert reference["statements"]["covered"] <= reference["statements"]["total"]
    assert all(p["path"].startswith("reference/") and p["reason"] for p in reference["pragmas"])
    # The table shows every clause, the missing ones marked, and the reference's gaps line by line.
    for entry in document["clauses"]:
        row = next(line for line in done.stdout.splitlines() if line.split()[:1] == [entry["id"]])
        assert ("MISSING" in row) == (entry["status"] == "missing")
    for path in reference["missing"]:
        assert f"  {path}: missing lines" in done.stdout


def test_a_clause_no_scenario_can_reach_is_reported_missing_and_exits_1(tmp_path):
    # One scenario cannot leave tasks pending, raise SIGINT and close twice at once.
    done = conformance("coverage", "--examples", "1", "--seed", "0", "--json", "out.json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["missing_clauses"] and not document["complete"]
    assert "INCOMPLETE" in done.stdout


def test_a_clause_added_to_the_spec_counts_as_not_exercised(tmp_path):
    spec = DEFAULT_SPEC.read_text(encoding="utf-8")
    row = "| K-6 |"
    assert row in spec
    new_row = "| K-7 | does something no rule knows yet. | all | | | |\n"
    at = spec.index("\n", spec.index(row)) + 1
    (tmp_path / "spec.md").write_text(spec[:at] + new_row + spec[at:], encoding="utf-8")
    done = conformance(
        "coverage", "--examples", "5", "--seed", "1", "--spec", "spec.md", "--json", "o.json", cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "o.json").read_text())
    assert document["clauses"][-1] == {"id": "K-7", "examples": 0, "status": "missing", "versions": []}
    assert "K-7" in document["missing_clauses"]
    assert re.search(r"^K-7 .*MISSING", done.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    "args, message",
    [
        (["coverage", "--spec", "no-such-spec.md"], "no-such-spec.md"),
        (["coverage", "--examples", "0"], "positive"),
        (["coverage", "--examples", "3", "--budget", "3"], "not allowed"),
    ],
)
def test_usage_and_configuration_errors_exit_2(tmp_path, args, message):
    done = conformance(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_a_not_applicable_clause_missing_from_the_spec_is_a_configuration_error(tmp_path):
    spec = DEFAULT_SPEC.read_text(encoding="utf-8")
    stale = "\n".join(line for line in spec.splitlines() if not line.startswith("| R14-1 |"))
    (tmp_path / "spec.md").write_text(stale, encoding="utf-8")
    done = conformance("coverage", "--examples", "1", "--spec", "spec.md", cwd=tmp_path)
    assert done.returncode == 2 and "R14-1" in done.stderr, done.stderr


def test_the_reference_failing_on_a_scenario_is_an_internal_error(monkeypatch, capsys):
    def broken(scenario, target, cancel_order=None):
        raise RuntimeError("the reference broke")

    monkeypatch.setattr(interpreter, "execute", broken)
    hook = sys.unraisablehook
    assert main(["coverage", "--examples", "2", "--seed", "0"]) == 3
    out = capsys.readouterr().out
    assert "INTERNAL" in out and "the reference broke" in out
    # What the measurement changed in this process is undone.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and sys.unraisablehook is hook


def test_a_scenario_that_leaves_the_process_dirty_ends_the_measurement(monkeypatch, tmp_path, capsys):
    executed = []

    def leaves_a_handler(scenario, target, cancel_order=None):
        executed.append(scenario)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return {"calls": [], "end": {}, "hints": {}}

    monkeypatch.setattr(interpreter, "execute", leaves_a_handler)
    json_path = tmp_path / "out.json"
    assert main(["coverage", "--examples", "5", "--seed", "0", "--json", str(json_path)]) == 3
    document = json.loads(json_path.read_text())
    assert len(executed) == 1 and document["examples"] == 1
    assert "SIGINT handler" in document["internal_errors"][0]["dirty"]
    assert "INTERNAL" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_coverage_measures_the_scenarios_a_campaign_generates(monkeypatch):
    measured = []
    real = interpreter.execute

    def recording(scenario, target, cancel_order=None):
        if not measured or measured[-1] is not scenario:
            measured.append(scenario)
        return real(scenario, target)

    monkeypatch.setattr(interpreter, "execute", recording)
    assert main(["coverage", "--examples", "12", "--seed", "7"]) in (0, 1)
    generated = []
    generate(scenarios("runner"), 7, generated.append, examples=12)
    assert measured == generated and len(generated) == 12


def test_a_default_policy_made_before_measuring_is_not_dirt():
    """Found by pytest-randomly: an earlier test had made asyncio's default policy object,
    and the interpreter's reset to "no policy" was taken for a policy left installed."""
    import asyncio

    asyncio.get_event_loop_policy()
    assert main(["coverage", "--examples", "3", "--seed", "7"]) in (0, 1)
