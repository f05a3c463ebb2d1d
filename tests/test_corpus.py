"""The regression corpus: storing scenarios, replaying a directory, and the corpus the package ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import corpus
from conformance.scenario import loads

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = corpus.SHIPPED
MUTANT = "tests.fixtures.mutants:NoCancelOnClose"


def conformance(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def some_scenarios(count: int = 3):
    return corpus.generated("fuzz", 7, 40)[:count]


# ------------------------------------------------------------------- storing


def test_add_stores_canonical_json_named_by_content_and_is_idempotent(tmp_path):
    scenarios = some_scenarios()
    source = tmp_path / "list.json"
    # Not canonical on purpose: indented, keys unsorted.
    source.write_text(json.dumps([s.to_json() for s in scenarios], indent=2))
    first = corpus.add(tmp_path / "c", [str(source)])
    assert [written for _, written in first] == [True] * 3
    for (path, _), scenario in zip(first, scenarios):
        assert path.name == f"{corpus.content_hash(scenario)}.json"
        assert path.read_text() == scenario.dumps() + "\n"
        assert loads(path.read_text()) == scenario
    again = corpus.add(tmp_path / "c", [str(source)], name="again")
    assert [(path, written) for path, written in again] == [(path, False) for path, _ in first]
    assert len(list((tmp_path / "c").glob("*.json"))) == 3


def test_a_name_prefixes_the_hash_and_must_be_a_plain_file_name(tmp_path):
    scenario = some_scenarios(1)[0]
    source = tmp_path / "one.json"
    source.write_text(scenario.dumps())
    [(path, written)] = corpus.add(tmp_path / "c", [str(source)], name="issue-42")
    assert written and path.name == f"issue-42-{corpus.content_hash(scenario)}.json"
    with pytest.raises(corpus.CorpusError, match="--name"):
        corpus.add(tmp_path / "c", [str(source)], name="../escape")


def test_the_command_line_adds_the_smallest_scenario_of_each_group_of_findings(tmp_path):
    scenarios = some_scenarios(2)
    findings = {"divergences": [{"scenario": s.to_json(), "clause": "K-1"} for s in scenarios]}
    (tmp_path / "findings.json").write_text(json.dumps(findings))
    done = conformance("corpus", "add", "kept", "findings.json", "--name", "k1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("added: ") == 2
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == sorted(corpus.file_name(s, "k1") for s in scenarios)
    again = conformance("corpus", "add", "kept", "findings.json", cwd=tmp_path)
    assert again.stdout.count("already there: ") == 2
    bad = conformance("corpus", "add", "kept", "missing.json", cwd=tmp_path)
    assert bad.returncode == 2 and "missing.json: cannot read" in bad.stderr and "Traceback" not in bad.stderr


def test_replay_of_a_directory_replays_every_json_file_sorted(tmp_path):
    for index, scenario in enumerate(some_scenarios(2)):
        (tmp_path / "c").mkdir(exist_ok=True)
        (tmp_path / "c" / f"{index}.json").write_text(scenario.dumps())
    (tmp_path / "c" / "notes.txt").write_text("not a scenario")
    done = conformance("replay", "c", "--candidate", MUTANT, "--json", "out.json", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["examples"] == 2 and document["settings"]["replayed"] == "c"
    assert [s for s in corpus.load(tmp_path / "c")] == some_scenarios(2)
    (tmp_path / "empty").mkdir()
    empty = conformance("replay", "empty", cwd=tmp_path)
    assert empty.returncode == 2 and "empty: no *.json scenario files" in empty.stderr


def test_build_is_deterministic_and_covers_every_clause_its_scenarios_exercise(tmp_path):
    first, covered = corpus.build(tmp_path / "a", "fuzz", 3, 60)
    second, _ = corpus.build(tmp_path / "b", "fuzz", 3, 60)
    assert [p.name for p in first] == [p.name for p in second]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
    scenarios = corpus.generated("fuzz", 3, 60)
    assert covered == set().union(*corpus.clauses_of(scenarios))
    assert len(first) < len(scenarios)


# ------------------------------------------------------------ the shipped corpus


def test_the_shipped_corpus_is_canonical():
    paths = corpus.files(SHIPPED)
    assert paths
    for path in paths:
        scenario = loads(path.read_text(), str(path))
        assert path.read_text() == scenario.dumps() + "\n" and path.stem.endswith(corpus.content_hash(scenario))


def test_the_shipped_corpus_exercises_every_applicable_clause_of_the_spec():
    """Computed from docs/spec.md and the reference: rebuild with ``python -m conformance.corpus build DIR``."""
    exercised = set().union(*corpus.clauses_of(corpus.load(SHIPPED)))
    missing = [clause for clause in corpus.applicable_clauses() if clause not in exercised]
    assert not missing, (
        f"the shipped corpus exercises none of {missing}: rebuild it (python -m conformance.corpus build {SHIPPED})"
    )


def test_the_shipped_corpus_replays_against_the_interpreters_asyncio_without_divergence(tmp_path):
    done = conformance("replay", str(SHIPPED), "--json", "out.json", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["examples"] == len(corpus.files(SHIPPED))
    assert document["divergences"] == [] and document["flaky"] == [] and document["invalid"] == []
