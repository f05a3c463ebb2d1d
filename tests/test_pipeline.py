"""The worker pool at full speed: requests pipelined, results in order, one result per request whatever breaks.

The targets under ``tests/fixtures/runners.py`` misbehave only on ``debug=True``
scenarios, so a bad scenario can sit in the middle of good ones and the test
can check that those queued behind it still get their own results.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from conformance.campaign import Campaign
from conformance.fuzz import Fuzzer
from conformance.isolation import WorkerPair
from conformance.pipeline import FLOOR_S, Deadlines, OutOfTime, Pipeline, grace_s
from conformance.scenario import Close, Return, Run, RunnerConfig, Scenario, Spawn, TaskGraph, TaskSpec, With, Yield

RUNNERS = "tests.fixtures.runners"
TIMEOUT = 60.0


def scenario(*steps, debug=None, mode="with") -> Scenario:
    steps = steps or (Return(3),)
    return Scenario(RunnerConfig(mode, debug), (Run(TaskGraph((TaskSpec(tuple(steps)),))),))


GOOD = scenario(Yield(), Return(3))
BAD = scenario(Return(3), debug=True)


def submit_all(pair, scenarios, timeout=TIMEOUT):
    ids = [pair.submit(s, timeout) for s in scenarios]
    return [pair.collect(i) for i in ids]


def test_pipelined_results_match_one_at_a_time_in_order():
    scenarios = list(itertools.islice(Fuzzer("runner").scenarios(3), 40))
    with WorkerPair("reference", "asyncio") as pair:
        one_by_one = [pair.check(s, TIMEOUT) for s in scenarios]
        pipeline = Pipeline(pair, Deadlines(), depth=8)
        pipelined = []
        for s in scenarios:
            pipeline.submit(s)
            while pipeline.full:
                pipelined.append(pipeline.next())
        while len(pipeline):
            pipelined.append(pipeline.next())
        assert pipeline.depth == 8  # doubled up from 1 with each clean result
    assert [s for s, _, _ in pipelined] == scenarios
    assert [(r["observation"], c["observation"]) for _, r, c in pipelined] == [
        (r["observation"], c["observation"]) for r, c in one_by_one
    ]


@pytest.mark.parametrize(
    ("runner", "outcome"),
    [("HangRunner", "HANG"), ("ExitRunner", "CRASH"), ("SigintHandlerRunner", "dirty")],
)
def test_what_is_queued_behind_a_broken_worker_gets_its_own_result(runner, outcome):
    with WorkerPair("reference", f"{RUNNERS}:{runner}") as pair:
        results = submit_all(pair, [GOOD, GOOD, BAD, GOOD, GOOD], timeout=1.5)
        assert all("observation" in reference for reference, _ in results)
        candidates = [candidate for _, candidate in results]
        if outcome == "dirty":
            assert "dirty" in candidates[2] and "observation" in candidates[2]
        else:
            assert candidates[2]["outcome"] == outcome, candidates[2]
        for good in candidates[:2] + candidates[3:]:
            assert "observation" in good and "dirty" not in good, good
        assert candidates[0]["observation"] == candidates[4]["observation"]
        assert pair.candidate.starts == 2 and pair.reference.starts == 1


def test_the_depth_falls_back_to_one_after_a_hang():
    with WorkerPair("reference", f"{RUNNERS}:HangRunner") as pair:
        pipeline = Pipeline(pair, Deadlines(fixed_s=0.2), depth=4)
        for s in (GOOD, GOOD, GOOD):
            pipeline.submit(s)
            while pipeline.full:
                pipeline.next()
        while len(pipeline):
            pipeline.next()
        assert pipeline.depth == 4
        pipeline.submit(BAD)
        _, _, candidate = pipeline.next()
        assert candidate["outcome"] == "HANG" and pipeline.depth == 1


def test_the_end_of_the_run_bounds_every_wait():
    with WorkerPair("reference", f"{RUNNERS}:HangRunner") as pair:
        pipeline = Pipeline(pair, Deadlines(fixed_s=TIMEOUT), end=time.monotonic() + 0.5)
        pipeline.submit(BAD)
        started = time.monotonic()
        with pytest.raises(OutOfTime):
            pipeline.next()
        assert time.monotonic() - started < 20, "bounded by the run's end, not by the hang"
        assert len(pipeline) == 0 and not pair.candidate.alive
        pipeline.end = None
        assert "observation" in pipeline.check(GOOD)[2]


def test_deadlines_adapt_and_allow_for_the_harness_own_grace():
    assert grace_s(GOOD) == pytest.approx(1.2)  # the worker's 1 s, the interpreter's 0.2 s at the with-block's exit
    assert grace_s(scenario(mode="run")) == pytest.approx(1.2)
    program = Scenario(RunnerConfig("close"), (Run(), With((Run(),)), Close()))
    assert grace_s(program) == pytest.approx(1.4)
    adaptive = Deadlines()
    assert adaptive.base_s() == FLOOR_S  # nothing measured yet
    for _ in range(100):
        adaptive.record(0.2)
    assert adaptive.base_s() == pytest.approx(4.0)
    adaptive.record(None)  # a HANG teaches nothing
    assert adaptive.for_scenario(GOOD) == pytest.approx(5.2)
    assert Deadlines(fixed_s=3.0).for_scenario(GOOD) == pytest.approx(4.2)


def test_a_candidate_that_patches_asyncio_never_shares_the_reference_process():
    yielding = scenario(Yield(), Return(1))
    with WorkerPair("reference", "asyncio") as clean:
        expected = clean.check(yielding, TIMEOUT)[0]["observation"]
    with WorkerPair("reference", "tests.fixtures.patching:Runner") as pair:
        reference, candidate = pair.check(yielding, TIMEOUT)
        assert pair.reference.pid != pair.candidate.pid
    assert reference["observation"] == expected
    assert "asyncio.sleep patched" in json.dumps(candidate["observation"])


def test_a_candidate_whose_outcome_changes_on_rerun_is_flaky_not_divergent():
    returning = [scenario(Return(value)) for value in (3, 4, 5)]
    with WorkerPair("reference", "tests.fixtures.flaky:AlternatingRunner") as pair:
        result = Campaign(pair, returning, seed=0).run(shrinking=False)
    assert result.divergences == [] and result.first_divergence_s is None
    (group,) = result.flaky
    assert group.count == 2 and result.statuses == {"flaky": 2, "same": 1}
    assert group.smallest.reruns[0] == "same" and group.smallest.reruns[1] == group.signature


def test_a_scenario_made_again_is_counted_not_checked_again():
    with WorkerPair("reference", "asyncio") as pair:
        result = Campaign(pair, [GOOD, BAD, GOOD, GOOD], seed=0).run(shrinking=False)
        assert pair.candidate.starts == 1
    assert result.examples == 4 and result.statuses == {"same": 2, "duplicate": 2}


class _ExplainsAllButTheOriginal:
    """A stand-in for ``VersionExplainer``: every scenario but the one first found is a version difference."""

    def __init__(self, original: Scenario) -> None:
        self.original = original

    def explains(self, result) -> bool:
        return result.scenario != self.original


def test_shrinking_never_swaps_a_divergence_for_a_difference_the_versions_explain():
    leftover = Scenario(
        RunnerConfig("with"),
        (Run(TaskGraph((TaskSpec((Spawn(1), Yield(), Yield(), Return(1))), TaskSpec((Yield(),) * 4)))),),
    )
    with WorkerPair("reference", "tests.fixtures.mutants:NoCancelOnClose") as pair:
        shrunk = Campaign(pair, [leftover], seed=0).run()
        kept = Campaign(pair, [leftover], seed=0, explainer=_ExplainsAllButTheOriginal(leftover)).run()
    (group,) = shrunk.divergences
    assert group.smallest.scenario.size() < leftover.size(), "without an explainer the divergence shrinks"
    (group,) = kept.divergences
    assert group.smallest.scenario == leftover, "every smaller variant is explained by the versions: none is taken"
