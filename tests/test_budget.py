"""A candidate that hangs on every scenario, or kills its process, ends the run on time with exit 1.

Small budgets and a short fixed deadline keep these quick; the bar itself
(``--budget 30`` with the adaptive deadline) is for benchmarks/bar.py.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.test_cli import conformance

#: A generous allowance for start-up and a loaded machine: this checks that the run is
#: bounded by its budget (it does not hang), not how fast it is (that is benchmarks/bar.py).
STARTUP_S = 30.0


@pytest.mark.parametrize(
    ("mutant", "budget", "category"),
    [("HangsAlways", 9, "HANG"), ("DiesAlways", 6, "CRASH")],
)
def test_a_hopeless_candidate_ends_within_its_budget(tmp_path, mutant, budget, category):
    started = time.monotonic()
    done = conformance(
        "run", "--candidate", f"tests.fixtures.mutants:{mutant}", "--budget", str(budget), "--timeout", "0.3",
        "--seed", "3", "--json", "out.json", cwd=tmp_path, timeout=budget + 60,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < budget + STARTUP_S, f"took {elapsed:.1f} s with a budget of {budget} s"
    report = json.loads((tmp_path / "out.json").read_text())
    assert [group["category"] for group in report["divergences"]] == [category]
    group = report["divergences"][0]
    assert group["reruns"] == [group["signature"]] * 2
    if category == "CRASH":
        assert group["candidate"]["returncode"] == 9
