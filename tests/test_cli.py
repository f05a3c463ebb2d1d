"""The command line, end to end, as a user runs it: exit codes, files written, findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def conformance(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_interpreter_asyncio_against_the_reference_exits_0(tmp_path):
    done = conformance("run", "--examples", "60", "--seed", "1", "--json", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["divergences"] == []
    assert report["examples"] == 60 and report["seed"] == 1
    assert report["candidate"] == "asyncio" and report["reference"] == "reference"
    assert (tmp_path / "reports" / "asyncio.md").exists()
    assert "no divergence" in done.stdout


def test_a_runner_that_does_not_cancel_leftovers_is_caught_and_shrunk(tmp_path):
    done = conformance(
        "run",
        "--candidate",
        "tests.fixtures.mutants:NoCancelOnClose",
        # A count, not a time budget: how far a budgeted run shrinks depends on the machine's load.
        "--examples",
        "200",
        "--seed",
        "2",
        "--json",
        "out.json",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    groups = report["divergences"]
    assert groups, "the mutant must be caught"
    top = groups[0]
    assert (top["clause"], top["category"]) == ("K-1", "leftover tasks")
    steps = sum(len(t["steps"]) for c in top["scenario"]["calls"] for t in c.get("main", {}).get("tasks", []))
    assert steps <= 5, f"shrunk to a handful of steps, got {top['scenario']}"
    assert set(top) >= {"clause", "category", "count", "scenario", "reference", "candidate", "reproducer"}
    assert "def " in top["reproducer"] and "asyncio" in top["reproducer"]


def test_replay_of_the_findings_reproduces_them(tmp_path):
    first = conformance(
        "run", "--candidate", "tests.fixtures.mutants:NoCancelOnClose", "--examples", "40", "--seed", "5",
        "--json", "found.json", cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 1, first.stdout + first.stderr
    again = conformance(
        "replay", "found.json", "--candidate", "tests.fixtures.mutants:NoCancelOnClose", "--json", "again.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 1, again.stdout + again.stderr
    clean = conformance("replay", "found.json", "--json", "clean.json", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_unknown_candidate_exits_2_with_one_line(tmp_path):
    done = conformance("run", "--candidate", "no_such_module:X", "--examples", "1", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_module" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--examples", "0"],
        ["run", "--examples", "3", "--budget", "3"],
        ["run", "--candidate-kind", "teapot"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(tmp_path, args):
    assert conformance(*args, cwd=tmp_path).returncode == 2


def test_malformed_scenario_file_exits_2_naming_file_and_field(tmp_path):
    (tmp_path / "bad.json").write_text('{"schema": 1, "runner": {"mode": "with"}, "calls": [{"call": "jump"}]}')
    done = conformance("replay", "bad.json", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.json" in done.stderr and "$.calls[0].call" in done.stderr
    (tmp_path / "code.json").write_text("__import__('os').system('touch pwned')")
    assert conformance("replay", "code.json", cwd=tmp_path).returncode == 2
    assert not (tmp_path / "pwned").exists()


def test_a_broken_reference_is_an_internal_error_exit_3(tmp_path):
    done = conformance(
        "run", "--reference", "tests.fixtures.mutants:HangsAlways", "--examples", "3", "--timeout", "2",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "INTERNAL" in done.stdout


def _other_python() -> str | None:
    """Another CPython (3.11+) on this machine, for the ``@PYTHON`` tests; None if there is none."""
    others = (minor for minor in (11, 12, 13, 14) if minor != sys.version_info[1])
    return next(filter(None, map(_python, others)), None)


def test_a_candidate_runs_under_the_interpreter_its_spec_names(tmp_path):
    python = _other_python()
    if python is None:
        pytest.skip("no other CPython 3.11+ on this machine")
    done = conformance(
        "run", "--candidate", f"asyncio@{python}", "--examples", "40", "--seed", "1", "--json", "o.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "o.json").read_text())
    command = [python, "-c", "import sys; print(sys.version.split()[0])"]
    version = subprocess.run(command, capture_output=True, text=True)
    # The default reference follows the candidate onto its interpreter.
    assert report["candidate_info"]["python"] == report["reference_info"]["python"] == version.stdout.strip()
    assert report["environment"]["driver_python"] != version.stdout.strip()


@pytest.mark.parametrize(
    ("spec", "words"),
    [("asyncio@", "expected NAME@PYTHON"), ("asyncio@/no/such/python3", "cannot run Python")],
)
def test_a_bad_interpreter_in_a_spec_exits_2_with_one_line(tmp_path, spec, words):
    done = conformance("run", "--candidate", spec, "--examples", "5", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_matrix_runs_each_candidate_and_keeps_the_unavailable_as_rows(tmp_path):
    done = conformance(
        "matrix",
        "asyncio",
        "tests.fixtures.mutants:NoCancelOnClose",
        "rsloop",
        "--examples",
        "60",
        "--seed",
        "1",
        "--out",
        "m",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "m" / "matrix.json").read_text())
    rows = {row["candidate"]: row for row in document["rows"]}
    assert set(rows) == {"asyncio", "tests.fixtures.mutants:NoCancelOnClose", "rsloop"}
    assert all(cell["state"] != "diverging" for cell in rows["asyncio"]["cells"].values())
    mutant = rows["tests.fixtures.mutants:NoCancelOnClose"]
    assert mutant["cells"]["K"]["state"] == "diverging" and mutant["divergence_groups"] >= 1
    assert "rsloop" in rows["rsloop"]["unavailable"]
    for row in (rows["asyncio"], mutant):  # each candidate's own report is written next to the matrix
        assert json.loads((tmp_path / "m" / row["report"]).read_text())["examples"] == row["examples"]
    assert "| `asyncio` |" in (tmp_path / "m" / "matrix.md").read_text()


def test_matrix_refuses_unknown_candidates(tmp_path):
    done = conformance("matrix", "no-such-loop", "--examples", "5", cwd=tmp_path)
    assert done.returncode == 2 and "unknown candidate(s): no-such-loop" in done.stderr


def _python(minor: int) -> str | None:
    """A working CPython 3.``minor`` on this machine (PATH or pyenv), or None."""
    import glob
    import shutil

    found = [shutil.which(f"python3.{minor}")]
    found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3")))
    for python in filter(None, found):
        done = subprocess.run([python, "-c", "import sys; print(sys.version_info[1])"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == str(minor):
            return python
    return None


GENERATOR_RUN = {"schema": 1, "runner": {"mode": "with"}, "calls": [{"call": "run_object", "object": "generator"}]}
LEFTOVER = {
    "schema": 1,
    "runner": {"mode": "with"},
    "calls": [
        {"call": "run", "main": {"tasks": [{"steps": [{"op": "spawn", "task": 1}]}, {"steps": [{"op": "yield"}]}]}}
    ],
}


def test_differences_between_python_versions_that_the_spec_predicts_are_not_divergences(tmp_path):
    """3.11's run() took a plain generator, 3.12 refuses it (docs/spec.md, version table: R-1)."""
    old, new = _python(11), _python(12) or _python(13)
    if old is None or new is None:
        pytest.skip("needs CPython 3.11 and 3.12 or 3.13 on this machine")
    (tmp_path / "s.json").write_text(json.dumps([GENERATOR_RUN, LEFTOVER]))
    common = ("--reference", f"asyncio@{old}", "--json", "o.json")
    done = conformance("replay", "s.json", "--candidate", f"asyncio@{new}", *common, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["divergences"] == []
    assert [(g["clause"], g["count"]) for g in report["version_differences"]] == [("R-1", 1)]
    # A difference the spec does not predict stays a divergence, even across versions.
    mutant = f"tests.fixtures.mutants:NoCancelOnClose@{new}"
    done = conformance("replay", "s.json", "--candidate", mutant, *common, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "o.json").read_text())
    assert [g["clause"] for g in report["divergences"]] == ["K-1"]


SIGINT_IN_MAIN = {
    "schema": 1,
    "runner": {"mode": "with"},
    "calls": [{"call": "run", "main": {"tasks": [{"steps": [{"op": "sigint"}]}]}}],
}


def _python_with_backports() -> str | None:
    """A CPython 3.9 or 3.10 of this machine with backports.asyncio.runner installed, or None."""
    for minor in (9, 10):
        python = _python(minor)
        if python and subprocess.run([python, "-c", "import backports.asyncio.runner"]).returncode == 0:
            return python
    return None


def test_a_backport_behaving_as_a_newer_cpython_shows_a_version_difference_not_a_divergence(tmp_path):
    """On 3.9/3.10 a Task has no uncancel(): the Runner's logic there ends a SIGINT in CancelledError (R-10).

    backports.asyncio.runner raises KeyboardInterrupt as CPython 3.11 does: what it is for.
    """
    python = _python_with_backports()
    if python is None:
        pytest.skip("needs CPython 3.9 or 3.10 with backports.asyncio.runner installed (pyenv on the dev machine)")
    (tmp_path / "s.json").write_text(json.dumps(SIGINT_IN_MAIN))
    done = conformance("replay", "s.json", "--candidate", f"backports@{python}", "--json", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["divergences"] == []
    assert [group["signature"] for group in report["version_differences"]] == ["R-10 SIGINT"]
