"""The scenario model: canonical JSON, defaults, and validation errors that name the offending field."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Callable, Dict

import pytest

from conformance.scenario import (
    MAX_STRING,
    MAX_TASKS,
    SCHEMA_VERSION,
    AsyncGen,
    Await,
    Cancel,
    Close,
    CloseLoop,
    CloseRunner,
    ConstructPositional,
    Executor,
    GetLoop,
    GetVar,
    GetVarCall,
    Group,
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    ScenarioError,
    SetSigintHandler,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    SigintWait,
    Spawn,
    StopLoop,
    TaskGraph,
    TaskSpec,
    Timeout,
    Uncancel,
    With,
    Yield,
    from_json,
    load_file,
    loads,
)

#: One scenario using every step, call, handler and option of the model.
EVERYTHING = Scenario(
    RunnerConfig("close", True, True),
    (
        SetVarCall("a", 1),
        GetVarCall("b"),
        GetLoop(),
        Run(
            TaskGraph(
                (
                    TaskSpec(
                        (Spawn(1), Yield(), Await(1, catch=True), Cancel(1, "stop"), GetVar("a"), SetVar("b", "x")),
                        OnCancel("cleanup", steps=(Spawn(2), Await(2), Executor(wait=False))),
                        (AsyncGen(), Sigint()),
                    ),
                    TaskSpec((Cancel(0), Raise("KeyboardInterrupt", "boom")), OnCancel("swallow", -7)),
                    TaskSpec((Return("done"),), finally_steps=(Raise("SystemExit"),)),
                )
            ),
            "copy",
        ),
        SigintCall(),
        With((Run(context="fresh"), RunObject("awaitable"), With((Close(),)))),
        Close(),
    ),
)

#: One scenario using every step, call and option added for runner misuse, loop hooks and interrupts.
EVERY_MISUSE = Scenario(
    RunnerConfig("close", False, loop_fails="set_debug", task_factory="legacy"),
    (
        ConstructPositional(),
        GetLoop(),
        RunObject("awaited"),
        Run(TaskGraph((TaskSpec((InterruptMain(), SetSigintHandler()), finally_steps=(CloseRunner(),)),))),
        CloseLoop(),
        Close(),
    ),
)

#: One scenario using every step and option added for task graphs, deadlines and interrupts.
EVERY_NEW_STEP = Scenario(
    RunnerConfig("with", sigint_handler="custom"),
    (
        Run(
            TaskGraph(
                (
                    TaskSpec(
                        (
                            Group("gather", (1, 2), return_exceptions=True, catch=True),
                            Group("wait", (3,), return_when="first_completed"),
                            Group("taskgroup", (4,), catch=True, steps=(Timeout("expired", True, (SigintWait(),)),)),
                            Group("shield", (5,)),
                            Group("wait_for", (6,), deadline="expired", catch=True),
                            Uncancel(),
                            NestedRun("run"),
                            AsyncGen((Yield(), Raise("RuntimeError", "agen"))),
                            StopLoop(),
                        ),
                        OnCancel("cleanup", steps=(Uncancel(), NestedRun("runner"))),
                    ),
                    *(TaskSpec((Yield(),)) for _ in range(6)),
                )
            )
        ),
    ),
)


def valid_document() -> Dict[str, Any]:
    """A small valid document: a runner in mode "with" running main, which spawns and awaits task 1."""
    return {
        "schema": SCHEMA_VERSION,
        "runner": {"mode": "with"},
        "calls": [
            {
                "call": "run",
                "main": {
                    "tasks": [
                        {"steps": [{"op": "spawn", "task": 1}, {"op": "await", "task": 1}]},
                        {"steps": [{"op": "yield"}]},
                    ]
                },
            }
        ],
    }


# ------------------------------------------------------------ round trip


@pytest.mark.parametrize(
    "scenario", [EVERYTHING, EVERY_NEW_STEP, EVERY_MISUSE], ids=["everything", "every-new-step", "every-misuse"]
)
def test_a_scenario_with_every_feature_round_trips_exactly(scenario: Scenario) -> None:
    text = scenario.dumps()
    assert loads(text) == scenario
    assert from_json(json.loads(text)) == scenario
    assert loads(text).dumps() == text


def test_new_fields_keep_the_text_of_older_scenarios_and_write_only_what_applies() -> None:
    """Optional fields at their defaults are left out (schema 1 still reads older files the same way)."""
    assert "sigint_handler" not in Scenario().to_json()["runner"]
    assert Scenario(RunnerConfig(thread="other")).to_json()["runner"]["thread"] == "other"
    plain = Scenario(calls=(Run(TaskGraph((TaskSpec((AsyncGen(),)),))),)).to_json()
    assert plain["calls"][0]["main"]["tasks"][0]["steps"] == [{"op": "agen"}]
    steps = EVERY_NEW_STEP.to_json()["calls"][0]["main"]["tasks"][0]["steps"]
    assert steps[0] == {"op": "group", "how": "gather", "tasks": [1, 2], "return_exceptions": True, "catch": True}
    assert steps[1] == {"op": "group", "how": "wait", "tasks": [3], "return_when": "first_completed"}
    assert steps[4] == {"op": "group", "how": "wait_for", "tasks": [6], "deadline": "expired", "catch": True}
    assert steps[5:8] == [
        {"op": "uncancel"},
        {"op": "nested_run", "how": "run"},
        {"op": "agen", "finally": [{"op": "yield"}, {"op": "raise", "exc": "RuntimeError", "arg": "agen"}]},
    ]


def test_loop_hooks_are_written_only_when_set() -> None:
    runner = EVERY_MISUSE.to_json()["runner"]
    assert runner["loop_fails"] == "set_debug" and runner["task_factory"] == "legacy"
    assert not {"loop_fails", "task_factory"} & set(Scenario(RunnerConfig("close", True)).to_json()["runner"])
    calls = EVERY_MISUSE.to_json()["calls"]
    assert calls[0] == {"call": "construct_positional"} and calls[4] == {"call": "close_loop"}
    assert calls[2] == {"call": "run_object", "object": "awaited"}
    steps = calls[3]["main"]["tasks"][0]
    assert steps == {
        "steps": [{"op": "interrupt_main"}, {"op": "set_sigint_handler"}],
        "finally": [{"op": "close_runner"}],
    }


def test_group_steps_spawn_their_tasks() -> None:
    """A group's tasks count as spawned by the task that holds it: they may be awaited or cancelled there."""
    graph = TaskGraph((TaskSpec((Group("gather", (1,)), Await(1), Cancel(1))), TaskSpec()))
    assert from_json(Scenario(calls=(Run(graph),)).to_json()).runs()[0].main == graph


def test_dumps_is_canonical() -> None:
    text = EVERYTHING.dumps()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert text.startswith('{"calls":[{"call":"set_var","value":1,"var":"a"},')
    # The same scenario written another way (keys reordered, defaults spelled out or left out) dumps the same.
    doc = valid_document()
    doc["calls"][0]["context"] = "runner"
    doc["runner"].update(debug=None, loop_factory=False)
    doc["calls"][0]["main"]["tasks"][1].update({"on_cancel": {"action": "propagate"}, "finally": []})
    shuffled = json.dumps(dict(reversed(list(doc.items()))), indent=2)
    assert loads(shuffled).dumps() == from_json(valid_document()).dumps()


def test_the_json_names_of_renamed_fields_and_omitted_defaults() -> None:
    plain = Scenario(calls=(Run(TaskGraph((TaskSpec((Executor(False),), finally_steps=(Yield(),)),))),)).to_json()
    task = plain["calls"][0]["main"]["tasks"][0]
    assert task == {"steps": [{"op": "executor", "await": False}], "finally": [{"op": "yield"}]}
    # Default handlers and empty finally blocks are left out; a handler keeps only the fields its action uses.
    assert TaskGraph().tasks[0] == TaskSpec()
    assert Scenario(calls=(Run(),)).to_json()["calls"][0]["main"] == {"tasks": [{"steps": []}]}
    swallow = Scenario(calls=(Run(TaskGraph((TaskSpec(on_cancel=OnCancel("swallow")),))),)).to_json()
    assert swallow["calls"][0]["main"]["tasks"][0]["on_cancel"] == {"action": "swallow", "value": None}
    cleanup = Scenario(calls=(Run(TaskGraph((TaskSpec(on_cancel=OnCancel("cleanup")),))),)).to_json()
    assert cleanup["calls"][0]["main"]["tasks"][0]["on_cancel"] == {"action": "cleanup", "steps": []}


def test_optional_fields_take_their_defaults() -> None:
    doc = valid_document()
    doc["calls"][0]["main"]["tasks"][1]["steps"] = [{"op": "executor"}, {"op": "cancel", "task": 0}, {"op": "return"}]
    scenario = from_json(doc)
    assert scenario.runner == RunnerConfig("with", None, False)
    run = scenario.calls[0]
    assert isinstance(run, Run) and run.context == "runner"
    assert run.main.tasks[0].steps == (Spawn(1), Await(1, catch=False))
    assert run.main.tasks[1].steps == (Executor(wait=True), Cancel(0, None), Return(None))
    assert run.main.tasks[1].on_cancel == OnCancel() and run.main.tasks[1].finally_steps == ()


def test_runs_and_size_include_nested_with_blocks() -> None:
    assert len(EVERYTHING.runs()) == 2
    assert [run.context for run in EVERYTHING.runs()] == ["copy", "fresh"]
    assert Scenario(calls=(Run(),)).size() == 2
    assert Scenario(calls=(Run(TaskGraph((TaskSpec((Yield(),), OnCancel("swallow")),))),)).size() == 4
    assert EVERYTHING.size() > Scenario(calls=EVERYTHING.calls[:4]).size()


# -------------------------------------------------------------- validation


def _set(path: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    """An edit of ``valid_document()`` setting a dotted path (``calls.0.main``) to ``value`` (or deleting it)."""

    def edit(doc: Dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        key_or_index: Any = int(last) if isinstance(node, list) else last
        if value is _DELETE:
            del node[key_or_index]
        else:
            node[key_or_index] = value

    return edit


_DELETE = object()
TASKS = "calls.0.main.tasks"
MAIN_STEPS = f"{TASKS}.0.steps"
CHILD_STEPS = f"{TASKS}.1.steps"

INVALID = {
    "unknown op": (
        _set(f"{CHILD_STEPS}.0", {"op": "jump"}),
        r"\$\.calls\[0\]\.main\.tasks\[1\]\.steps\[0\]\.op: expected one of yield, spawn",
    ),
    "field of another op": (
        _set(f"{CHILD_STEPS}.0", {"op": "yield", "task": 1}),
        r"\$\.calls\[0\]\.main\.tasks\[1\]\.steps\[0\]\.task: unknown field",
    ),
    "unknown call": (_set("calls.0.call", "stop"), r"\$\.calls\[0\]\.call: expected one of run, run_object"),
    "missing runner": (_set("runner", _DELETE), r"<scenario>: \$: missing field 'runner'"),
    "missing main": (_set("calls.0.main", _DELETE), r"\$\.calls\[0\]: missing field 'main'"),
    "missing steps": (_set(f"{CHILD_STEPS}", _DELETE), r"\$\.calls\[0\]\.main\.tasks\[1\]: missing field 'steps'"),
    "missing spawn target": (
        _set(f"{MAIN_STEPS}.0", {"op": "spawn"}),
        r"\.tasks\[0\]\.steps\[0\]\.task: expected an integer from 1 to 1, got None",
    ),
    "task index out of range": (
        _set(f"{MAIN_STEPS}.0", {"op": "spawn", "task": 2}),
        r"\$\.calls\[0\]\.main\.tasks\[0\]\.steps\[0\]\.task: expected an integer from 1 to 1, got 2",
    ),
    "cancel of a task out of range": (
        _set(f"{CHILD_STEPS}.0", {"op": "cancel", "task": -1}),
        r"\.tasks\[1\]\.steps\[0\]\.task: expected an integer from 0 to 1, got -1",
    ),
    "await of the main task": (
        _set(f"{CHILD_STEPS}.0", {"op": "await", "task": 0}),
        r"\.tasks\[1\]\.steps\[0\]\.task: expected an integer from 1 to 1, got 0",
    ),
    "task never spawned": (
        _set(MAIN_STEPS, []),
        r"\$\.calls\[0\]\.main\.tasks: task 1 is never spawned from the main task's tree",
    ),
    "task spawned twice": (
        _set(MAIN_STEPS, [{"op": "spawn", "task": 1}, {"op": "spawn", "task": 1}]),
        r"\$\.calls\[0\]\.main\.tasks: task 1 is spawned more than once",
    ),
    "task spawning itself": (
        _set(TASKS, [{"steps": []}, {"steps": [{"op": "spawn", "task": 1}]}]),
        r"\$\.calls\[0\]\.main\.tasks: task 1 is part of a spawn cycle",
    ),
    "await of a non-child": (
        _set(
            TASKS,
            [
                {"steps": [{"op": "spawn", "task": 1}, {"op": "await", "task": 2}]},
                {"steps": [{"op": "spawn", "task": 2}]},
                {"steps": []},
            ],
        ),
        r"\$\.calls\[0\]\.main\.tasks: task 0 awaits task 2, which it does not spawn",
    ),
    "spawn cycle": (
        _set(
            TASKS,
            [{"steps": []}, {"steps": [{"op": "spawn", "task": 2}]}, {"steps": [{"op": "spawn", "task": 1}]}],
        ),
        r"\$\.calls\[0\]\.main\.tasks: task 1 is part of a spawn cycle",
    ),
    "no main task": (_set(TASKS, []), r"\$\.calls\[0\]\.main\.tasks: a graph needs at least the main task"),
    "too many tasks": (
        _set(TASKS, [{"steps": []}] * (MAX_TASKS + 1)),
        rf"\$\.calls\[0\]\.main\.tasks: at most {MAX_TASKS} entries allowed, got {MAX_TASKS + 1}",
    ),
    "wrong schema version": (_set("schema", 2), r"\$\.schema: unsupported schema 2 \(this version reads 1\)"),
    "unknown mode": (_set("runner.mode", "loop"), r"\$\.runner\.mode: expected one of with, close, run"),
    "debug not a boolean": (_set("runner.debug", "yes"), r"\$\.runner\.debug: expected true or false or null"),
    "mode run with two calls": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"].append(copy.deepcopy(doc["calls"][0]))),
        r"\$\.calls: mode 'run' needs exactly one run or run_object call",
    ),
    "mode run without calls": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"].clear()),
        r"\$\.calls: mode 'run' needs exactly one",
    ),
    "mode run with another call": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"].insert(0, {"call": "get_loop"})),
        r"\$\.calls\[0\]\.call: mode 'run' allows only one run or run_object call",
    ),
    "mode run with a context": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"][0].update(context="copy")),
        r"\$\.calls\[0\]\.context: an asyncio\.run-like function takes no context",
    ),
    "value in a propagate handler": (
        _set(f"{TASKS}.1.on_cancel", {"action": "propagate", "value": 1}),
        r"\.tasks\[1\]\.on_cancel\.value: only a 'swallow' handler returns a value",
    ),
    "steps in a swallow handler": (
        _set(f"{TASKS}.1.on_cancel", {"action": "swallow", "steps": [{"op": "yield"}]}),
        r"\.tasks\[1\]\.on_cancel\.steps: only a 'cleanup' handler has steps",
    ),
    "boolean as a value": (
        _set(f"{CHILD_STEPS}.0", {"op": "return", "value": True}),
        r"\.tasks\[1\]\.steps\[0\]\.value: expected a printable string",
    ),
    "integer out of range": (
        _set(f"{CHILD_STEPS}.0", {"op": "return", "value": 2**31}),
        r"\.tasks\[1\]\.steps\[0\]\.value: integer out of range",
    ),
    "unprintable message": (
        _set(f"{CHILD_STEPS}.0", {"op": "cancel", "task": 0, "msg": "a\nb"}),
        r"\.tasks\[1\]\.steps\[0\]\.msg: expected a printable string",
    ),
    "message too long": (
        _set(f"{CHILD_STEPS}.0", {"op": "raise", "exc": "ValueError", "arg": "x" * (MAX_STRING + 1)}),
        rf"\.tasks\[1\]\.steps\[0\]\.arg: expected a printable string of at most {MAX_STRING} characters",
    ),
    "unknown exception": (
        _set(f"{CHILD_STEPS}.0", {"op": "raise", "exc": "OSError"}),
        r"\.tasks\[1\]\.steps\[0\]\.exc: expected one of ValueError",
    ),
    "unknown context variable": (
        _set(f"{CHILD_STEPS}.0", {"op": "get_var", "var": "z"}),
        r"\.tasks\[1\]\.steps\[0\]\.var: expected one of a, b, c",
    ),
    "unknown object": (
        _set("calls.0", {"call": "run_object", "object": "coroutine"}),
        r"\$\.calls\[0\]\.object: expected one of int, none",
    ),
    "with nested four deep": (
        _set(
            "calls",
            [
                {
                    "call": "with",
                    "calls": [{"call": "with", "calls": [{"call": "with", "calls": [{"call": "with", "calls": []}]}]}],
                }
            ],
        ),
        r"\$\.calls\[0\]\.calls\[0\]\.calls\[0\]\.calls\[0\]: 'with' calls nest at most 3 deep",
    ),
    "step not an object": (_set(f"{CHILD_STEPS}.0", "yield"), r"\.tasks\[1\]\.steps\[0\]: expected an object, got str"),
    "group without tasks": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "gather"}),
        r"\.tasks\[0\]\.steps\[0\]: missing field 'tasks'",
    ),
    "unknown group kind": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "race", "tasks": [1]}),
        r"\.tasks\[0\]\.steps\[0\]\.how: expected one of gather, wait, taskgroup, shield, wait_for, got 'race'",
    ),
    "option of another group kind": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "gather", "tasks": [1], "return_when": "first_completed"}),
        r"\.tasks\[0\]\.steps\[0\]\.return_when: a 'gather' group has no 'return_when'",
    ),
    "body of a group that is not a TaskGroup": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "wait", "tasks": [1], "steps": []}),
        r"\.tasks\[0\]\.steps\[0\]\.steps: a 'wait' group has no 'steps'",
    ),
    "shield of two tasks": (
        _set(
            TASKS,
            [{"steps": [{"op": "group", "how": "shield", "tasks": [1, 2]}]}, {"steps": []}, {"steps": []}],
        ),
        r"\.tasks\[0\]\.steps\[0\]\.tasks: a 'shield' group waits for exactly one task",
    ),
    "group naming a task twice": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "gather", "tasks": [1, 1]}),
        r"\.tasks\[0\]\.steps\[0\]\.tasks: a group names each task once",
    ),
    "group of the main task": (
        _set(f"{MAIN_STEPS}.0", {"op": "group", "how": "gather", "tasks": [0]}),
        r"\.tasks\[0\]\.steps\[0\]\.tasks\[0\]: expected an integer from 1 to 1, got 0",
    ),
    "task spawned and grouped": (
        _set(MAIN_STEPS, [{"op": "spawn", "task": 1}, {"op": "group", "how": "gather", "tasks": [1]}]),
        r"\$\.calls\[0\]\.main\.tasks: task 1 is spawned more than once",
    ),
    "unknown deadline": (
        _set(f"{CHILD_STEPS}.0", {"op": "timeout", "deadline": "soon", "steps": []}),
        r"\.tasks\[1\]\.steps\[0\]\.deadline: expected one of never, expired, got 'soon'",
    ),
    "steps nested too deep": (
        _set(
            f"{CHILD_STEPS}.0",
            {
                "op": "timeout",
                "steps": [
                    {
                        "op": "timeout",
                        "steps": [{"op": "timeout", "steps": [{"op": "timeout", "steps": [{"op": "yield"}]}]}],
                    }
                ],
            },
        ),
        r"\.steps\[0\]\.steps\[0\]\.steps\[0\]\.steps\[0\]\.steps: steps that hold steps nest at most 3 deep",
    ),
    "spawn in an async generator's finally": (
        _set(f"{CHILD_STEPS}.0", {"op": "agen", "finally": [{"op": "spawn", "task": 1}]}),
        r"\.tasks\[1\]\.steps\[0\]\.finally\[0\]\.op: expected one of yield, raise, got 'spawn'",
    ),
    "KeyboardInterrupt in an async generator's finally": (
        _set(f"{CHILD_STEPS}.0", {"op": "agen", "finally": [{"op": "raise", "exc": "KeyboardInterrupt"}]}),
        r"\.tasks\[1\]\.steps\[0\]\.finally\[0\]\.exc: an async generator's finally may raise only an Exception",
    ),
    "outside SIGINT in a child": (
        _set(f"{CHILD_STEPS}.0", {"op": "sigint_wait"}),
        r"\.tasks\[1\]\.steps\[0\]\.op: only the main task \(task 0\) may wait for an outside SIGINT",
    ),
    "nested run of a runner in mode run": (
        lambda doc: (
            doc["runner"].update(mode="run"),
            doc["calls"][0]["main"]["tasks"][1].update(steps=[{"op": "nested_run"}]),
        ),
        r"\.tasks\[1\]\.steps\[0\]\.how: mode 'run' has no runner object; use 'run'",
    ),
    "unknown nested run": (
        _set(f"{CHILD_STEPS}.0", {"op": "nested_run", "how": "asyncio"}),
        r"\.tasks\[1\]\.steps\[0\]\.how: expected one of runner, run, got 'asyncio'",
    ),
    "unknown SIGINT handler": (
        _set("runner.sigint_handler", "mine"),
        r"\$\.runner\.sigint_handler: expected one of default, custom, ignored, got 'mine'",
    ),
    "unknown thread": (
        _set("runner.thread", "worker"),
        r"\$\.runner\.thread: expected one of main, other, got 'worker'",
    ),
    "SIGINT step in another thread": (
        lambda doc: (
            doc["runner"].update(thread="other"),
            doc["calls"][0]["main"]["tasks"][1].update(steps=[{"op": "sigint"}]),
        ),
        r"\.tasks\[1\]\.steps\[0\]\.op: a runner driven from another thread handles no SIGINT",
    ),
    "SIGINT call in another thread": (
        lambda doc: (doc["runner"].update(thread="other"), doc["calls"].append({"call": "sigint"})),
        r"\$\.calls\[1\]\.call: a runner driven from another thread handles no SIGINT",
    ),
    "steps not an array": (_set(CHILD_STEPS, {}), r"\.tasks\[1\]\.steps: expected an array, got dict"),
    "unknown loop failure": (
        _set("runner.loop_fails", "sometimes"),
        r"\$\.runner\.loop_fails: expected one of never, create, set_debug, got 'sometimes'",
    ),
    "unknown task factory": (
        _set("runner.task_factory", "lazy"),
        r"\$\.runner\.task_factory: expected one of none, custom, eager, legacy, got 'lazy'",
    ),
    "failing set_debug the runner never calls": (
        _set("runner.loop_fails", "set_debug"),
        r"\$\.runner\.loop_fails: 'set_debug' needs debug true or false and no loop factory",
    ),
    "failing set_debug of a factory's loop": (
        lambda doc: doc["runner"].update(loop_fails="set_debug", debug=True, loop_factory=True),
        r"\$\.runner\.loop_fails: 'set_debug' needs debug true or false and no loop factory",
    ),
    "closing the runner from a task in mode run": (
        lambda doc: (
            doc["runner"].update(mode="run"),
            doc["calls"][0]["main"]["tasks"][1].update(steps=[{"op": "close_runner"}]),
        ),
        r"\.tasks\[1\]\.steps\[0\]\.op: mode 'run' has no runner object to close",
    ),
    "interrupt_main in another thread": (
        lambda doc: (
            doc["runner"].update(thread="other"),
            doc["calls"][0]["main"]["tasks"][1].update(steps=[{"op": "interrupt_main"}]),
        ),
        r"\.tasks\[1\]\.steps\[0\]\.op: a runner driven from another thread handles no SIGINT",
    ),
    "a SIGINT handler installed in another thread": (
        lambda doc: (
            doc["runner"].update(thread="other"),
            doc["calls"][0]["main"]["tasks"][1].update(steps=[{"op": "set_sigint_handler"}]),
        ),
        r"\.tasks\[1\]\.steps\[0\]\.op: a runner driven from another thread handles no SIGINT",
    ),
    "constructing positionally in mode run": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"].insert(0, {"call": "construct_positional"})),
        r"\$\.calls\[0\]\.call: mode 'run' allows only one run or run_object call",
    ),
    "closing the loop in mode run": (
        lambda doc: (doc["runner"].update(mode="run"), doc["calls"].append({"call": "close_loop"})),
        r"\$\.calls\[1\]\.call: mode 'run' allows only one run or run_object call",
    ),
    "a field of a call that has none": (
        _set("calls.0", {"call": "close_loop", "var": "a"}),
        r"\$\.calls\[0\]\.var: unknown field",
    ),
}


@pytest.mark.parametrize("edit, message", list(INVALID.values()), ids=list(INVALID))
def test_invalid_documents_are_refused_naming_the_field(edit, message: str) -> None:
    doc = valid_document()
    from_json(copy.deepcopy(doc))  # the starting point is valid
    edit(doc)
    with pytest.raises(ScenarioError, match=message):
        loads(json.dumps(doc))


def test_the_top_level_must_be_an_object() -> None:
    with pytest.raises(ScenarioError, match=r"^<scenario>: \$: expected an object, got list$"):
        loads("[]")


def test_text_that_is_not_json_is_refused_with_its_source() -> None:
    with pytest.raises(ScenarioError, match=r"^scenario\.json: not valid JSON: "):
        loads('{"schema": 1,', source="scenario.json")
    with pytest.raises(ScenarioError, match=r"^<scenario>: not valid JSON"):
        loads("schema = 1")


# ----------------------------------------------------------------- files


def test_load_file_reads_one_scenario_a_list_or_a_findings_file(tmp_path) -> None:
    one = tmp_path / "one.json"
    one.write_text(EVERYTHING.dumps(), encoding="utf-8")
    assert load_file(str(one)) == [EVERYTHING]
    several = tmp_path / "several.json"
    several.write_text(json.dumps([EVERYTHING.to_json(), Scenario().to_json()]), encoding="utf-8")
    assert load_file(str(several)) == [EVERYTHING, Scenario()]
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"divergences": [{"scenario": EVERYTHING.to_json(), "count": 3}]}))
    assert load_file(str(findings)) == [EVERYTHING]


def test_load_file_names_the_file_when_it_is_missing(tmp_path) -> None:
    missing = tmp_path / "no-such-scenario.json"
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(missing))}: cannot read: "):
        load_file(str(missing))
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(tmp_path))}: cannot read: "):
        load_file(str(tmp_path))  # a directory


@pytest.mark.parametrize("garbage", ["", "not json at all", '{"schema": 1', "\ufeff{}"])
def test_load_file_names_the_file_when_it_is_garbage(tmp_path, garbage: str) -> None:
    path = tmp_path / "garbage.json"
    path.write_text(garbage, encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(path))}: not valid JSON: "):
        load_file(str(path))


def test_load_file_names_the_file_and_the_field_when_a_scenario_is_invalid(tmp_path) -> None:
    path = tmp_path / "bad.json"
    doc = valid_document()
    doc["schema"] = 7
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(path))}: \$\.schema: unsupported schema 7"):
        load_file(str(path))
    path.write_text(json.dumps([valid_document(), doc]), encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(path))}: \[1\]: \$\.schema: unsupported schema 7"):
        load_file(str(path))
    path.write_text(json.dumps({"divergences": [{"scenario": doc}]}), encoding="utf-8")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(path))}: \$\.divergences\[0\]\.scenario: \$\.schema"):
        load_file(str(path))


# ------------------------------------------------- known gaps (see the report)


def test_load_file_names_the_file_when_it_is_not_text(tmp_path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError, match=re.escape(str(path))):
        load_file(str(path))


@pytest.mark.parametrize("schema", [True, 1.0])
def test_a_schema_that_only_equals_one_is_refused(schema: Any) -> None:
    doc = valid_document()
    doc["schema"] = schema
    with pytest.raises(ScenarioError, match=r"\$\.schema"):
        from_json(doc)


def test_deeply_nested_json_is_a_scenario_error():
    from conformance.scenario import ScenarioError, loads

    with pytest.raises(ScenarioError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000, "deep.json")
