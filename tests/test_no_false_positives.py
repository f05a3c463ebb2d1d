"""The interpreter's own asyncio and our reference never diverge (the suite's first promise).

Scenarios come from the same strategies a campaign uses, and each runs in the
two worker processes exactly as in ``conformance run``. A divergence here is a
bug in the reference, the interpreter or the comparison, never in CPython.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from conformance.differential import DIVERGED, INVALID, check
from conformance.isolation import WorkerPair
from strategies import record, scenarios

TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def runner_pair():
    with WorkerPair("reference", "asyncio") as pair:
        yield pair


@pytest.fixture(scope="module")
def run_pair():
    with WorkerPair("reference.run", "asyncio.run") as pair:
        yield pair


@pytest.fixture(scope="module")
def loop_pair():
    """A loop-factory candidate: asyncio.Runner driving asyncio's own loop factory."""
    with WorkerPair("reference", "asyncio:new_event_loop") as pair:
        yield pair


def assert_same(pair, scenario):
    record(scenario)  # what the example exercises, for Hypothesis's statistics and targeting
    result = check(pair, scenario, TIMEOUT_S)
    assert result.status != INVALID, f"the reference could not run {scenario.dumps()}: {result.reference}"
    assert result.status != DIVERGED, f"asyncio diverged from the reference on {scenario.dumps()}:\n" + "\n".join(
        f"  {d}" for d in result.differences
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios("runner"))
def test_asyncio_runner_never_diverges_from_reference_runner(runner_pair, scenario):
    assert_same(runner_pair, scenario)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios("run"))
def test_asyncio_run_never_diverges_from_reference_run(run_pair, scenario):
    assert_same(run_pair, scenario)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios("loop"))
def test_asyncio_loop_factory_never_diverges_from_reference(loop_pair, scenario):
    assert_same(loop_pair, scenario)
