"""The published JSON Schemas: up to date, and true of what the generators make and workers answer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings

from conformance import schemas
from conformance.fuzz import Fuzzer
from conformance.interpreter import execute
from conformance.targets import load_target
from strategies import scenarios

jsonschema = pytest.importorskip("jsonschema")

SCENARIO = jsonschema.Draft202012Validator(schemas.scenario_schema())
OBSERVATION = jsonschema.Draft202012Validator(schemas.observation_schema())


def test_the_schemas_are_valid_and_the_published_files_up_to_date():
    for name, make in schemas.SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(make())
        published = (schemas.SCHEMAS_DIR / name).read_text(encoding="utf-8")
        assert published == schemas.render(make), f"schemas/{name} is stale: run python -m conformance.schemas"


@pytest.mark.parametrize("kind", ["runner", "run", "loop"])
def test_fuzzed_scenarios_and_their_observations_validate(kind):
    target = load_target("reference.run" if kind == "run" else "reference")
    for scenario in itertools.islice(Fuzzer(kind).scenarios(3), 150):
        SCENARIO.validate(scenario.to_json())
        OBSERVATION.validate(execute(scenario, target))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios("runner"))
def test_hypothesis_scenarios_validate(scenario):
    SCENARIO.validate(scenario.to_json())


def test_the_schema_rejects_what_the_model_rejects():
    good = {"schema": 1, "runner": {"mode": "run"}, "calls": [{"call": "run", "main": {"tasks": [{"steps": []}]}}]}
    SCENARIO.validate(good)
    for bad in (
        {**good, "schema": 2},
        {**good, "runner": {"mode": "sideways"}},
        {**good, "calls": [{"call": "run", "main": {"tasks": [{"steps": [{"op": "teleport"}]}]}}]},
        {**good, "calls": [{"call": "run", "main": {"tasks": [{"steps": [{"op": "raise", "exc": "OSError"}]}]}}]},
        {**good, "extra": True},
    ):
        assert not SCENARIO.is_valid(bad), bad
