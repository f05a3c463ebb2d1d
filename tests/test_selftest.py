"""Proof that the suite bites: the mutant catalogue, and ``conformance selftest`` run over all of it.

One ``conformance selftest`` (the campaign of ``conformance run``, stopped at
each mutant's first divergence) runs over the whole catalogue with a fixed
seed and a fixed number of scenarios per mutant, so that which mutants are
caught does not depend on the machine's speed. Every mutant must then be
caught, except those the catalogue expects to survive (their scenario element
is not generated, or their clause does not exist in the CPython version the
reference imitates here): expected failures with their reason, never skipped,
so that one that starts being caught shows as XPASS.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

import reference
from conformance.mutants import CATALOGUE, NOT_MUTATED, Mutant
from conformance.targets import detect_kind
from tests.test_cli import conformance

SEED = 1
EXAMPLES = 1000

SPEC = Path(__file__).resolve().parents[1] / "docs" / "spec.md"
SPEC_CLAUSES = set(re.findall(r"^\| ((?:[A-Z]|R14)-\d+) \|", SPEC.read_text(encoding="utf-8"), re.MULTILINE))


def why_it_may_survive(mutant: Mutant) -> str | None:
    expected = mutant.expected_to_survive(reference.default_version())
    return None if expected is None else f"expected to survive: {expected}"


def catalogue_params():
    for mutant in CATALOGUE:
        reason = why_it_may_survive(mutant)
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        yield pytest.param(mutant, id=f"{mutant.clause}-{mutant.name}", marks=marks)


@pytest.fixture(scope="module")
def selftest(tmp_path_factory):
    """The whole catalogue, once: (the finished command, its JSON outcomes by mutant name)."""
    cwd = tmp_path_factory.mktemp("selftest")
    done = conformance(
        "selftest", "--examples", str(EXAMPLES), "--seed", str(SEED), "--json", "selftest.json", cwd=cwd, timeout=400
    )
    assert (cwd / "selftest.json").exists(), done.stdout + done.stderr
    document = json.loads((cwd / "selftest.json").read_text())
    return done, document, {entry["name"]: entry for entry in document["mutants"]}


# ---------------------------------------------------------------- the catalogue


def test_every_clause_of_the_spec_has_a_mutant_or_a_reason_not_to():
    mutated = {mutant.clause for mutant in CATALOGUE}
    assert mutated <= SPEC_CLAUSES, mutated - SPEC_CLAUSES
    assert set(NOT_MUTATED) <= SPEC_CLAUSES, set(NOT_MUTATED) - SPEC_CLAUSES
    assert not mutated & set(NOT_MUTATED), mutated & set(NOT_MUTATED)
    assert SPEC_CLAUSES == mutated | set(NOT_MUTATED), SPEC_CLAUSES - mutated - set(NOT_MUTATED)
    assert all(reason.strip() for reason in NOT_MUTATED.values())


@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: m.name)
def test_every_mutant_is_the_kind_it_claims_and_names_its_clause(mutant):
    import conformance.mutants as module

    obj = getattr(module, mutant.name)
    assert detect_kind(obj) == mutant.kind
    if mutant.kind == "runner":
        assert issubclass(obj, reference.Runner)
    if mutant.kind == "loop":
        assert issubclass(obj, asyncio.AbstractEventLoop)
    assert mutant.mistake.startswith(f"{mutant.clause} broken"), mutant.mistake
    assert mutant.spec == f"conformance.mutants:{mutant.name}"


def test_catalogue_names_are_unique():
    names = [mutant.name for mutant in CATALOGUE]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------- conformance selftest


@pytest.mark.parametrize("mutant", catalogue_params())
def test_the_campaign_catches_the_mutant(selftest, mutant):
    _, _, outcomes = selftest
    outcome = outcomes[mutant.name]
    assert outcome["problem"] is None, outcome["problem"]
    assert outcome["verdict"] == "caught", f"{mutant.clause} {mutant.name} survived {outcome['examples']} scenarios"
    assert 0 <= outcome["time_to_catch_s"] <= outcome["elapsed_s"]
    assert 1 <= outcome["examples"] <= EXAMPLES and outcome["signature"]


def test_selftest_prints_each_mutant_then_kill_rate_and_median_time(selftest):
    done, document, outcomes = selftest
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"selftest: {len(CATALOGUE)} mutants, hypothesis mode, seed {SEED}")
    for mutant in CATALOGUE:
        line = next(line for line in lines if f" {mutant.name} " in line)
        assert line.split()[0] == outcomes[mutant.name]["verdict"]
    caught = sum(entry["caught"] for entry in outcomes.values())
    assert f"kill rate: {caught}/{len(CATALOGUE)} mutants caught" in done.stdout
    assert "time to catch: median" in done.stdout
    assert document["median_time_to_catch_s"] is not None


def test_selftest_exit_status_says_whether_every_mutant_expected_to_be_caught_was(selftest):
    done, document, outcomes = selftest
    missed = [
        name
        for name, entry in outcomes.items()
        if not entry["caught"] and entry["expected_to_survive"] is None and entry["problem"] is None
    ]
    assert document["exit_status"] == done.returncode == (1 if missed else 0), done.stdout + done.stderr


def test_only_a_mutant_expected_to_be_caught_that_survives_fails_the_selftest():
    from conformance.selftest import EXIT_INTERNAL, EXIT_OK, EXIT_SURVIVED, MutantOutcome, describe, exit_status

    expected = Mutant("NoCancelOnClose", "K-1", survives="pretend no scenario leaves a task behind")
    wrong_version = Mutant("NoCancelOnClose", "K-1", versions=((3, 99),))
    plain = Mutant("NoCancelOnClose", "K-1")
    assert wrong_version.expected_to_survive((3, 11)) == "K-1 does not exist in 3.11"
    survivor = MutantOutcome(expected, expected.expected_to_survive((3, 11)), examples=5, elapsed_s=1.0)
    assert exit_status([survivor]) == EXIT_OK
    assert "(expected: pretend no scenario leaves a task behind)" in describe(survivor)
    missed = MutantOutcome(plain, None, examples=5, elapsed_s=1.0)
    assert exit_status([survivor, missed]) == EXIT_SURVIVED
    assert describe(missed).startswith("SURVIVED") and plain.mistake in describe(missed)
    caught = MutantOutcome(plain, None, caught=True, time_to_catch_s=0.5, examples=2, signature="K-1 leftover tasks")
    assert exit_status([caught]) == EXIT_OK and "K-1 leftover tasks" in describe(caught)
    broken = MutantOutcome(plain, None, problem="cannot start a worker: boom")
    assert exit_status([caught, broken]) == EXIT_INTERNAL


def test_selftest_refuses_an_unknown_mutant(tmp_path):
    done = conformance("selftest", "--mutant", "NoSuchMutant", "--examples", "1", cwd=tmp_path)
    assert done.returncode == 2 and "NoSuchMutant" in done.stderr


@pytest.mark.parametrize(
    ("name", "kind"),
    [("run_not_closing_on_error", "run"), ("DebugFlagIgnoredLoop", "loop"), ("NoCancelOnClose", "runner")],
)
def test_conformance_run_catches_a_mutant_of_each_kind_by_its_spec(tmp_path, name, kind):
    done = conformance(
        "run", "--candidate", f"conformance.mutants:{name}", "--examples", "60", "--seed", "1", "--json", "out.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["candidate_info"]["kind"] == kind
    assert report["divergences"]
