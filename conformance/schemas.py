"""JSON Schemas of the two documents that cross the worker protocol, made from the model itself.

A worker in another language (docs/protocol.md) needs to know, in a form its
own tools read, what a scenario may contain and what an observation must
look like. ``scenario_schema()`` is built from the scenario model's own
tables (``conformance.scenario``: the step kinds and their fields, the
allowed values, the limits), so it cannot drift from what the driver
accepts; ``observation_schema()`` states the observation shape documented in
``conformance.interpreter``. The schemas describe structure and values; the
rules that tie parts of a scenario together (a spawn tree rooted at the main
task, mode ``run`` taking one call) are ``scenario.from_json``'s, and say so.

``python -m conformance.schemas`` writes ``schemas/*.schema.json``;
tests/test_schemas.py checks that the published files are up to date and that
generated scenarios and recorded observations validate against them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from conformance import scenario as model

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_VALUE = {
    "oneOf": [
        {"type": "null"},
        {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        {"$ref": "#/$defs/text"},
    ]
}
_TASK = {"type": "integer", "minimum": 0, "maximum": model.MAX_TASKS - 1}
_STEPS = {"type": "array", "maxItems": model.MAX_STEPS, "items": {"$ref": "#/$defs/step"}}

#: The schema of each step field, by name (``how`` depends on the step kind: see ``_step``).
_FIELD_SCHEMAS: Dict[str, Any] = {
    "task": _TASK,
    "catch": {"type": "boolean"},
    "msg": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/text"}]},
    "arg": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/text"}]},
    "exc": {"enum": list(model.RAISABLE)},
    "value": {"$ref": "#/$defs/value"},
    "var": {"enum": list(model.CONTEXT_VARS)},
    "finally": _STEPS,
    "await": {"type": "boolean"},
    "tasks": {"type": "array", "minItems": 1, "maxItems": model.MAX_TASKS - 1, "items": _TASK},
    "return_exceptions": {"type": "boolean"},
    "return_when": {"enum": list(model.RETURN_WHEN)},
    "deadline": {"enum": list(model.DEADLINES)},
    "steps": _STEPS,
}
_HOW = {"group": list(model.GROUP_KINDS), "nested_run": list(model.NESTED_RUNS)}

#: Allowed values of each runner option, by field of ``RunnerConfig``.
_RUNNER_VALUES: Dict[str, Any] = {
    "mode": {"enum": list(model.MODES)},
    "debug": {"enum": [None, True, False]},
    "loop_factory": {"type": "boolean"},
    "sigint_handler": {"enum": list(model.SIGINT_HANDLERS)},
    "thread": {"enum": list(model.THREADS)},
    "loop_fails": {"enum": list(model.LOOP_FAILURES)},
    "task_factory": {"enum": list(model.TASK_FACTORIES)},
}


def _step(op: str) -> Dict[str, Any]:
    fields = model._STEP_FIELDS[op]
    properties: Dict[str, Any] = {"op": {"const": op}}
    for name in fields:
        properties[name] = {"enum": _HOW[op]} if name == "how" else _FIELD_SCHEMAS[name]
    return {
        "type": "object",
        "properties": properties,
        "required": ["op", *model._REQUIRED_STEP_FIELDS.get(op, ())],
        "additionalProperties": False,
    }


def _runner() -> Dict[str, Any]:
    properties = {}
    for field in dataclasses.fields(model.RunnerConfig):
        if field.name not in _RUNNER_VALUES:
            raise KeyError(f"RunnerConfig.{field.name} has no schema in conformance.schemas._RUNNER_VALUES")
        properties[field.name] = {**_RUNNER_VALUES[field.name], "default": field.default}
    return {"type": "object", "properties": properties, "required": ["mode"], "additionalProperties": False}


def _call(kind: str, properties: Dict[str, Any], required: List[str]) -> Dict[str, Any]:
    return {
        "type": "object",
        "properties": {"call": {"const": kind}, **properties},
        "required": ["call", *required],
        "additionalProperties": False,
    }


def scenario_schema() -> Dict[str, Any]:
    """The scenario document (``scenario.SCHEMA_VERSION``), from the model's tables."""
    calls = {"type": "array", "maxItems": model.MAX_CALLS, "items": {"$ref": "#/$defs/call"}}
    call_shapes = {
        "run": _call("run", {"main": {"$ref": "#/$defs/graph"}, "context": {"enum": list(model.CONTEXTS)}}, ["main"]),
        "run_object": _call("run_object", {"object": {"enum": list(model.NON_COROUTINES)}}, ["object"]),
        "get_loop": _call("get_loop", {}, []),
        "close": _call("close", {}, []),
        "with": _call("with", {"calls": calls}, ["calls"]),
        "set_var": _call("set_var", {"var": _FIELD_SCHEMAS["var"], "value": _VALUE}, ["var"]),
        "get_var": _call("get_var", {"var": _FIELD_SCHEMAS["var"]}, ["var"]),
        "sigint": _call("sigint", {}, []),
        "construct_positional": _call("construct_positional", {}, []),
        "close_loop": _call("close_loop", {}, []),
    }
    kinds = [t.call for t in model.CALL_TYPES]
    unknown = sorted(set(kinds) - set(call_shapes))
    if unknown:
        raise KeyError(f"calls without a schema in conformance.schemas: {', '.join(unknown)}")
    task = {
        "type": "object",
        "properties": {
            "steps": _STEPS,
            "on_cancel": {
                "type": "object",
                "properties": {
                    "action": {"enum": list(model.CANCEL_ACTIONS)},
                    "value": {"$ref": "#/$defs/value"},
                    "steps": _STEPS,
                },
                "required": ["action"],
                "additionalProperties": False,
            },
            "finally": _STEPS,
        },
        "required": ["steps"],
        "additionalProperties": False,
    }
    ops = [t.op for t in model.STEP_TYPES]
    return {
        "$schema": DRAFT,
        "$id": "https://runner-conformance/schemas/scenario.schema.json",
        "title": f"runner-conformance scenario, schema {model.SCHEMA_VERSION}",
        "description": "What a worker is asked to run (docs/protocol.md). Structure and values only: the rules "
        "tying parts together (a spawn tree rooted at task 0, mode 'run' taking exactly one run or run_object "
        "call, nesting depths) are checked by conformance.scenario.from_json.",
        "type": "object",
        "properties": {"schema": {"const": model.SCHEMA_VERSION}, "runner": _runner(), "calls": calls},
        "required": ["schema", "runner", "calls"],
        "additionalProperties": False,
        "$defs": {
            "text": {"type": "string", "maxLength": model.MAX_STRING},
            "value": _VALUE,
            "step": {"oneOf": [{"$ref": f"#/$defs/step_{op}"} for op in ops]},
            **{f"step_{op}": _step(op) for op in ops},
            "task": task,
            "graph": {
                "type": "object",
                "properties": {"tasks": {"type": "array", "minItems": 1, "maxItems": model.MAX_TASKS, "items": task}},
                "required": ["tasks"],
                "additionalProperties": False,
            },
            "call": {"oneOf": [call_shapes[kind] for kind in kinds]},
        },
    }


def observation_schema() -> Dict[str, Any]:
    """The observation a worker answers with (the shape in ``conformance.interpreter``'s docstring)."""
    lines = {"type": "array", "items": {"type": "string"}}
    exception = {
        "type": "object",
        "properties": {"type": {"type": "string"}, "args": {"type": "array"}},
        "required": ["type", "args"],
    }
    record = {
        "type": "object",
        "properties": {
            "call": {"type": "string"},
            "path": {"type": "string", "pattern": r"^\$"},
            "log": lines,
            "reports": {"type": "array"},
            "outcome": {
                "oneOf": [
                    {"type": "object", "properties": {"returned": {}}, "required": ["returned"]},
                    {"type": "object", "properties": {"raised": exception}, "required": ["raised"]},
                ]
            },
            "tasks": {"type": "object", "additionalProperties": {"type": "string"}},
            "state": {
                "type": "object",
                "properties": {
                    "thread_loop": {"type": "string"},
                    "sigint": {"type": "string"},
                    "threads": {"type": "boolean"},
                },
                "required": ["thread_loop", "sigint"],
            },
        },
        "required": ["call", "path", "log", "reports", "outcome"],
    }
    return {
        "$schema": DRAFT,
        "$id": "https://runner-conformance/schemas/observation.schema.json",
        "title": "runner-conformance observation",
        "description": "What a worker records for one scenario (docs/protocol.md; conformance/interpreter.py).",
        "type": "object",
        "properties": {
            "calls": {"type": "array", "items": record},
            "end": {
                "type": "object",
                "properties": {
                    "loops": {"type": "object", "additionalProperties": {"enum": ["closed", "open", "running"]}},
                    "log": lines,
                    "reports": {"type": "array"},
                    "warnings": lines,
                },
                "required": ["loops", "log", "reports", "warnings"],
            },
            "hints": {
                "type": "object",
                "properties": {"pending_at_main_exit": lines},
                "required": ["pending_at_main_exit"],
            },
        },
        "required": ["calls", "end", "hints"],
    }


SCHEMAS = {"scenario.schema.json": scenario_schema, "observation.schema.json": observation_schema}


def render(make: Any) -> str:
    return json.dumps(make(), indent=1, sort_keys=True) + "\n"


def main() -> int:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    for name, make in SCHEMAS.items():
        (SCHEMAS_DIR / name).write_text(render(make), encoding="utf-8")
        print(f"wrote {SCHEMAS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
