"""Expectations files: reading and validating them, the gate, writing and merging, and the CI gate end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conformance import expectations
from conformance.corpus import SHIPPED as SHIPPED_CORPUS
from conformance.expectations import Expectation, Expectations, ExpectationsError, dump, load, loads, update

ROOT = Path(__file__).resolve().parents[1]
MUTANT = "tests.fixtures.mutants:NoCancelOnClose"


def conformance(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def group(clause: str, category: str, count: int = 1) -> Dict[str, Any]:
    return {"clause": clause, "category": category, "signature": f"{clause} {category}", "count": count}


def document(divergences: List[Dict[str, Any]], flaky: List[Dict[str, Any]] = ()) -> Dict[str, Any]:
    return {
        "candidate": "x:Y",
        "candidate_info": {"python": "3.12.4"},
        "environment": {"platform": "Linux"},
        "divergences": list(divergences),
        "flaky": list(flaky),
        "version_differences": [group("R-1", "result")],
    }


FILE = """
candidate = "x:Y"

[[expected]]
clause = "R-9"
signature = "R-9 result"
status = "FAIL"
python = ">=3.12"
os = "Linux"
reason = "known"
link = "https://example.org/1"

[[expected]]
clause = "-"
status = "HANG"
python = ["3.11", "3.12"]
reason = "hangs"

[[expected]]
clause = "K-1"
status = "FLAKY"
reason = "sometimes"
"""


# ----------------------------------------------------------------- reading


def test_a_file_loads_into_entries_in_order():
    known = loads(FILE, "e.toml")
    assert known.candidate == "x:Y" and known.source == "e.toml"
    assert [entry.clause for entry in known.entries] == ["R-9", "-", "K-1"]
    first = known.entries[0]
    assert (first.status, first.signature, first.python, first.os) == ("FAIL", "R-9 result", ">=3.12", ("Linux",))
    assert known.entries[1].python == ("3.11", "3.12")


@pytest.mark.parametrize(
    "text, words",
    [
        ("[[expected]\n", ["e.toml", "not valid TOML"]),
        ('colour = "red"\n', ["e.toml", "unknown top-level key", "colour"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "FAIL"\nwhy = "x"\n', ["[[expected]] #1 (clause R-9)", "why"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "BROKEN"\n', ["#1 (clause R-9)", "BROKEN", "FAIL, HANG"]),
        ('[[expected]]\nstatus = "FAIL"\n', ["#1", "'clause' is required"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "FAIL"\npython = "newest"\n', ["#1", "newest"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "FAIL"\npython = [">=3.12"]\n', ["#1", ">=3.12"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "FAIL"\nos = 3\n', ["#1", "'os'"]),
        ('[[expected]]\nclause = "R-9"\nstatus = "FAIL"\n[[expected]]\nclause = 2\n', ["#2", "'clause'"]),
        ('expected = "R-9"\n', ["e.toml", "[[expected]]"]),
    ],
)
def test_a_bad_file_raises_one_error_naming_the_file_and_the_entry(tmp_path, text, words):
    path = tmp_path / "e.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError) as raised:
        load(path)
    message = str(raised.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ExpectationsError, match=r"nothere\.toml: cannot read"):
        load(tmp_path / "nothere.toml")


@pytest.mark.parametrize(
    "python, system, applies",
    [
        ("3.12.4", "Linux", True),
        ("3.13.0", "linux", True),
        ("3.11.9", "Linux", False),
        ("3.12.4", "Darwin", False),
    ],
)
def test_python_and_os_conditions(python, system, applies):
    assert loads(FILE).entries[0].applies(python, system) is applies


@pytest.mark.parametrize(
    "python, spec, applies",
    [
        ("3.11.7", ">=3.11,<3.13", True),
        ("3.13.1", ">=3.11,<3.13", False),
        ("3.12.1", "3.12", True),
        ("3.12.1", "==3.12.1", True),
        ("3.12.1", "!=3.12", False),
        ("3.14.0", ">3.13", True),
    ],
)
def test_version_specifiers_compare_on_the_parts_they_give(python, spec, applies):
    assert Expectation("R-9", "FAIL", python=spec).applies(python, "Linux") is applies


# -------------------------------------------------------------------- the gate


def test_every_finding_expected_passes_and_each_is_paired_with_its_entry():
    gate = loads(FILE).gate(document([group("R-9", "result", 3), group("-", "HANG")]), "3.12.4", "Linux")
    assert gate.passed and gate.passed_strictly and not gate.new and not gate.stale
    assert [(f["signature"], f["status"], f["expectation"]["reason"]) for f in gate.expected] == [
        ("R-9 result", "FAIL", "known"),
        ("- HANG", "HANG", "hangs"),
    ]


def test_a_new_finding_fails_and_an_entry_that_does_not_apply_here_expects_nothing():
    gate = loads(FILE).gate(document([group("R-9", "result"), group("-", "HANG")]), "3.13.0", "Linux")
    assert not gate.passed
    assert [finding["status"] for finding in gate.new] == ["HANG"]  # the HANG entry is for 3.11 and 3.12 only


def test_the_status_must_agree_a_crash_is_not_a_hang_nor_a_divergence_of_the_same_clause():
    known = Expectations((Expectation("-", "HANG"), Expectation("R-9", "FAIL", category="exception")))
    gate = known.gate(document([group("-", "CRASH"), group("R-9", "result")]), "3.12", "Linux")
    assert [finding["signature"] for finding in gate.new] == ["- CRASH", "R-9 result"]
    assert len(gate.stale) == 2


def test_an_entry_that_applies_and_no_longer_happens_is_stale_but_only_fails_strictly():
    gate = loads(FILE).gate(document([]), "3.12.4", "Linux")
    assert [entry.clause for entry in gate.stale] == ["R-9", "-"]  # FLAKY entries are never stale
    assert gate.passed and not gate.passed_strictly
    assert gate.to_json()["stale"][0] == {
        "clause": "R-9",
        "signature": "R-9 result",
        "status": "FAIL",
        "python": ">=3.12",
        "os": ["Linux"],
        "reason": "known",
        "link": "https://example.org/1",
    }
    assert "STALE" in gate.summary() and "passed" in gate.summary()


def test_flaky_groups_are_findings_and_a_flaky_entry_also_accepts_a_steady_divergence():
    known = loads(FILE)
    flaky = known.gate(document([], flaky=[group("K-1", "leftover tasks")]), "3.12.4", "Linux")
    steady = known.gate(document([group("K-1", "leftover tasks")]), "3.12.4", "Linux")
    assert flaky.passed and steady.passed
    unexpected = Expectations().gate(document([], flaky=[group("K-1", "cleanup")]), "3.12", "Linux")
    assert [finding["status"] for finding in unexpected.new] == ["FLAKY"]


def test_version_differences_are_not_findings():
    assert Expectations().gate(document([]), "3.12", "Linux").passed_strictly


# ------------------------------------------------------------ writing and merging


def test_dump_round_trips_through_tomllib_with_awkward_strings():
    entry = Expectation("R-9", "FAIL", "R-9 result", "result", (">=3.12"), ("Linux", "Darwin"), 'a "quoted"\\ñ\n', "u")
    known = Expectations((entry, Expectation("-", "CRASH", python=("3.11",))), candidate="mod:Runner")
    again = loads(dump(known))
    assert again.entries == known.entries and again.candidate == "mod:Runner"


def test_update_adds_new_findings_for_review_keeps_what_still_holds_and_drops_the_stale():
    existing = loads(FILE)
    findings = document([group("R-9", "result"), group("R-2", "warnings", 4)])
    updated = update(existing, findings)
    clauses = [(entry.clause, entry.status, entry.reason) for entry in updated.entries]
    # R-9 matched (kept with its reason), the HANG entry applies here (3.12, Linux) and is stale (dropped),
    # the FLAKY one is kept, R-2 is new.
    assert clauses == [("R-9", "FAIL", "known"), ("K-1", "FLAKY", "sometimes"), ("R-2", "FAIL", "TODO: explain")]
    assert updated.entries[-1].signature == "R-2 warnings"
    assert update(updated, findings) == updated  # idempotent
    assert update(None, findings).candidate == "x:Y"


def test_update_keeps_entries_for_other_pythons_and_systems():
    existing = Expectations((Expectation("R-3", "FAIL", os=("Windows",)), Expectation("R-4", "FAIL", python="<3.12")))
    assert update(existing, document([])).entries == existing.entries


def test_findings_reads_statuses_from_categories():
    found = expectations.findings(document([group("-", "CRASH"), group("R-9", "result")], [group("S-1", "SIGINT")]))
    assert [(f["signature"], f["status"]) for f in found] == [
        ("- CRASH", "CRASH"),
        ("R-9 result", "FAIL"),
        ("S-1 SIGINT", "FLAKY"),
    ]


# ------------------------------------------------------------------ end to end


def test_gating_a_broken_runner_end_to_end(tmp_path):
    """New finding → exit 1; expectations written from it → exit 0; the fixed runner → reported stale, exit 0."""
    corpus = str(SHIPPED_CORPUS)
    first = conformance(
        "replay", corpus, "--candidate", MUTANT, "--json", "m.json", "--expectations", "e.toml", cwd=tmp_path
    )
    assert first.returncode == 2 and "e.toml: cannot read" in first.stderr  # no file yet: a usage error
    (tmp_path / "e.toml").write_text('candidate = "tests.fixtures.mutants:NoCancelOnClose"\n')
    new = conformance(
        "replay", corpus, "--candidate", MUTANT, "--json", "m.json", "--expectations", "e.toml", cwd=tmp_path
    )
    assert new.returncode == 1, new.stdout + new.stderr
    gated = json.loads((tmp_path / "m.json").read_text())["expectations"]
    assert gated["new"] and not gated["expected"] and not gated["passed"] and "NEW" in new.stdout

    wrote = conformance("expectations", "update", "--from", "m.json", "--out", "e.toml", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    assert load(tmp_path / "e.toml").entries and 'reason = "TODO: explain"' in (tmp_path / "e.toml").read_text()
    known = conformance(
        "replay", corpus, "--candidate", MUTANT, "--json", "m.json", "--expectations", "e.toml", cwd=tmp_path
    )
    assert known.returncode == 0, known.stdout + known.stderr
    assert json.loads((tmp_path / "m.json").read_text())["expectations"]["new"] == []

    fixed = conformance("replay", corpus, "--json", "a.json", "--expectations", "e.toml", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    stale = json.loads((tmp_path / "a.json").read_text())["expectations"]["stale"]
    assert len(stale) == len(load(tmp_path / "e.toml").entries) and "STALE" in fixed.stdout
    strict = conformance("replay", corpus, "--expectations", "e.toml", "--strict-expectations", cwd=tmp_path)
    assert strict.returncode == 1


def test_run_accepts_expectations_and_a_malformed_file_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "bad.toml").write_text('[[expected]]\nclause = "R-9"\nstatus = "MAYBE"\n')
    done = conformance(
        "run", "--mode", "fuzz", "--examples", "5", "--seed", "1", "--expectations", "bad.toml", cwd=tmp_path
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "bad.toml: [[expected]] #1 (clause R-9)" in done.stderr and "MAYBE" in done.stderr
    (tmp_path / "ok.toml").write_text("")
    done = conformance(
        "run", "--mode", "fuzz", "--examples", "5", "--seed", "1", "--expectations", "ok.toml", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "expectations passed: 0 expected, 0 new, 0 stale" in done.stdout


def test_update_from_something_that_is_not_findings_exits_2(tmp_path):
    (tmp_path / "s.json").write_text("[]")
    done = conformance("expectations", "update", "--from", "s.json", "--out", "e.toml", cwd=tmp_path)
    assert done.returncode == 2 and "s.json: not a findings JSON" in done.stderr
