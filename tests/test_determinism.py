"""The same seed gives the same findings, byte for byte apart from timings, in both generation modes."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import conformance

#: Fields that measure time, the only ones two runs may differ in.
TIMINGS = {"elapsed_s"}


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


@pytest.mark.parametrize(("mode", "examples"), [("hypothesis", "40"), ("fuzz", "150")])
def test_two_runs_with_the_same_seed_write_the_same_json(tmp_path, mode, examples):
    documents = []
    for run in ("first", "second"):
        done = conformance(
            "run", "--candidate", "tests.fixtures.mutants:NoCancelOnClose", "--mode", mode,
            "--examples", examples, "--seed", "11", "--json", f"{run}.json", "--report", f"{run}.md",
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        documents.append(without_timings(json.loads((tmp_path / f"{run}.json").read_text())))
    first, second = documents
    assert first["divergences"], "the mutant must be caught, or there is little to compare"
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["settings"]["mode"] == mode
