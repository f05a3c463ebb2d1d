"""Hypothesis drawing in a process of its own: the same scenarios for the same seed, and nothing left running."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import List

import pytest

from conformance.campaign import generate
from conformance.drawn import DrawingProcessFailed, Drawn
from conformance.scenario import Scenario


def _drawing_children() -> List[int]:
    """Processes of ours running ``conformance.drawn`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"conformance.drawn" in command:
            found.append(int(entry.name))
    return found


def _drawn(kind: str, seed: int, examples: int) -> List[Scenario]:
    made: List[Scenario] = []
    generate(Drawn(kind), seed, made.append, examples)
    return made


def test_the_same_seed_draws_the_same_scenarios_and_another_seed_others():
    first, again, other = _drawn("runner", 4, 40), _drawn("runner", 4, 40), _drawn("runner", 5, 40)
    assert len(first) == 40 and first == again
    assert first != other


@pytest.mark.parametrize("kind", ["run", "loop"])
def test_each_kind_draws_what_that_kind_of_candidate_runs(kind):
    for scenario in _drawn(kind, 1, 30):
        if kind == "run":
            assert scenario.runner.mode == "run" and not scenario.runner.loop_factory
        else:
            assert scenario.runner.loop_factory


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to list child processes")
def test_the_drawing_process_ends_with_the_stream():
    stream = Drawn("runner").scenarios(1)
    list(itertools.islice(stream, 3))
    assert len(_drawing_children()) == 1
    stream.close()
    assert _drawing_children() == []
    _drawn("runner", 1, 5)  # through campaign.generate, which closes what it opened
    assert _drawing_children() == []


def test_a_drawing_process_that_fails_is_an_error_not_a_short_campaign():
    with pytest.raises(DrawingProcessFailed, match="ended early"):
        _drawn("no-such-kind", 1, 5)
