"""The pytest plugin (conformance/plugin.py), in-process with ``pytester``.

It must add nothing without ``--conformance-candidate``; with it, one item
per corpus scenario, the lifecycle machine and a fuzz run, which pass for a
conformant candidate and whose properties reach the JUnit XML; its findings
must not depend on pytest-randomly's seed. The whole story of a broken
runner in a project of its own (failure, expectations, stale) is
tests/test_plugin_toy_project.py.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import List

import pytest
from hypothesis import settings

from conformance import corpus, plugin
from conformance.expectations import loads

pytest_plugins = ["pytester"]

MUTANT = "tests.fixtures.mutants:NoCancelOnClose"


def _load_plugin() -> List[str]:
    """``-p conformance.plugin`` unless the installed entry point loads it already (twice is an error)."""
    installed = any(entry.value == "conformance.plugin" for entry in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "conformance.plugin"]


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*_load_plugin(), "-p", "no:cacheprovider", *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_own="def test_own():\n    pass\n")
    return pytester


def test_inert_without_a_candidate(project: pytest.Pytester) -> None:
    result = _run(project, "--collect-only", "-q")
    result.assert_outcomes()
    assert "1 test collected" in result.stdout.str()
    assert "conformance::" not in result.stdout.str()
    assert not (project.path / "reports").exists()


def test_options_are_documented_in_help(project: pytest.Pytester) -> None:
    result = _run(project, "--help")
    for option in ("--conformance-candidate", "--conformance-expectations", "--conformance-budget"):
        assert option in result.stdout.str()


def test_a_candidate_adds_corpus_lifecycle_and_fuzz_items(project: pytest.Pytester) -> None:
    result = _run(project, "--conformance-candidate=asyncio", "--collect-only", "-q")
    shipped = [path.stem for path in corpus.files(corpus.SHIPPED)]
    expected = [f"conformance::corpus::{stem}" for stem in shipped] + ["conformance::lifecycle", "conformance::fuzz"]
    for node in expected:
        assert node in result.stdout.str(), result.stdout.str()
    assert f"{len(expected) + 1} tests collected" in result.stdout.str()


def test_a_user_corpus_is_replayed_too_and_k_selects_items(project: pytest.Pytester) -> None:
    mine = project.path / "mine"
    mine.mkdir()
    first = corpus.files(corpus.SHIPPED)[0]
    (mine / "regression.json").write_text(first.read_text())
    result = _run(project, "--conformance-candidate=asyncio", "--conformance-corpus=mine", "-k", "regression", "-v")
    result.assert_outcomes(passed=1, deselected=len(corpus.files(corpus.SHIPPED)) + 3)
    assert "conformance::corpus::mine/regression PASSED" in result.stdout.str()


def test_a_conformant_candidate_passes_and_the_junit_xml_says_how(project: pytest.Pytester) -> None:
    result = _run(
        project,
        "--conformance-candidate=asyncio",
        "--conformance-seed=7",
        "--conformance-examples=20",
        "--junitxml=junit.xml",
    )
    result.assert_outcomes(passed=len(corpus.files(corpus.SHIPPED)) + 3)
    assert "conformance: candidate asyncio, seed 7, profile conformance-ci" in result.stdout.str()
    junit = (project.path / "junit.xml").read_text()
    properties = (("conformance_candidate", "asyncio"), ("conformance_seed", "7"), ("conformance_examples", "20"))
    for name, value in properties:
        assert f'<property name="{name}" value="{value}" />' in junit
    for name in ("python", "version_hypothesis", "version_pytest", "conformance_candidate_python"):
        assert f'<property name="{name}" value=' in junit
    findings = json.loads((project.path / "reports" / "conformance" / "findings.json").read_text())
    assert findings["divergences"] == [] and findings["candidate"] == "asyncio"


def test_findings_do_not_depend_on_pytest_randomly(project: pytest.Pytester) -> None:
    """pytest-randomly reseeds the global random before each test: our seeds are explicit, so nothing changes."""
    pytest.importorskip("pytest_randomly")
    seen = []
    for randomly_seed in ("1", "2"):
        result = _run(
            project,
            f"--conformance-candidate={MUTANT}",
            "--conformance-examples=40",
            "--conformance-budget=60",
            "-p",
            "randomly",
            f"--randomly-seed={randomly_seed}",
            "-k",
            "fuzz",
        )
        result.assert_outcomes(failed=1, deselected=len(corpus.files(corpus.SHIPPED)) + 2)
        findings = json.loads((project.path / "reports" / "conformance" / "findings.json").read_text())
        seen.append((findings["statuses"], sorted(group["signature"] for group in findings["divergences"])))
    assert seen[0] == seen[1]


def test_a_malformed_expectations_file_is_a_usage_error(project: pytest.Pytester) -> None:
    (project.path / "bad.toml").write_text("[[expected]]\nstatus = 'MAYBE'\n")
    result = _run(project, "--conformance-candidate=asyncio", "--conformance-expectations=bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "bad.toml" in result.stderr.str()


def test_profiles_are_registered_not_loaded() -> None:
    ci = settings.get_profile(plugin.CI_PROFILE)
    assert ci.derandomize and ci.database is None and ci.deadline is None
    assert settings.get_profile(plugin.NIGHTLY_PROFILE).max_examples > ci.max_examples
    # Registering the profiles changed nothing for other tests: the profile in force is still
    # Hypothesis's own ("default", or "ci" where the CI variable is set).
    assert settings.get_current_profile_name() not in (plugin.CI_PROFILE, plugin.NIGHTLY_PROFILE)


# ------------------------------------------------------ verdict bookkeeping


def test_stale_means_matched_by_no_item() -> None:
    entry = '[[expected]]\nclause = "{}"\nstatus = "FAIL"\n'
    entries = loads(entry.format("K-1") + entry.format("R-9")).entries
    state = plugin.State(options=None)  # type: ignore[arg-type]
    state.unmatched = [set(entries), {entries[1]}]  # one item matched K-1, none matched R-9
    assert state.stale() == [entries[1]]
    assert plugin.State(options=None).stale() == []  # type: ignore[arg-type]


def test_groups_merge_by_signature_across_items() -> None:
    one = [{"signature": "K-1 leftover tasks", "count": 2, "scenario": "a"}]
    two = [{"signature": "K-1 leftover tasks", "count": 3, "scenario": "b"}, {"signature": "R-9 result", "count": 1}]
    merged = plugin._merged_groups(iter([one, two]))
    assert [(g["signature"], g["count"]) for g in merged] == [("K-1 leftover tasks", 5), ("R-9 result", 1)]
    assert merged[0]["scenario"] == "a"


def test_a_lifecycle_violation_is_filed_under_the_first_clause_it_cites(tmp_path: Path) -> None:
    options = plugin.Options("x:Y", None, plugin.CI_PROFILE, 0, 1.0, None, None, [], tmp_path, None, False)
    state = plugin.State(options)
    with pytest.raises(plugin.ConformanceFailure, match="L-1"):
        plugin._lifecycle_verdict(state, "the candidate breaks the lifecycle model:\n  $.calls[1] run: ... [L-1, C-1]")
    assert state.documents[0]["divergences"][0]["signature"] == "L-1 lifecycle"
