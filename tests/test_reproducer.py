"""Reproducer scripts (``conformance.reproducer``): standalone, and faithful to the interpreter.

Each rendered script is run in a fresh subprocess (``--side NAME --json``) and
what it records must equal what ``conformance.interpreter.execute`` records
for the same scenario and target, field by field: every call's outcome, log,
exception-handler reports, task states and process state, and the aftermath
(loop states, final log, reports and warnings). The only normalisation is the
name of the program's own functions (a never-awaited coroutine in a warning, a
function handed to ``run`` in an error message), which are the interpreter's
in one case and the script's in the other. Scenarios come from a fixed set
that covers the model (checked by a test) and from ``strategies.scenarios``.

The scripts are also checked to import only the standard library (and the
candidate's module, on the candidate's side only), to run in an isolated
interpreter far from this repository, and to show a real divergence.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import gc
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

from conformance.interpreter import execute
from conformance.reproducer import ReproducerError, render
from conformance.scenario import (
    CALL_TYPES,
    CANCEL_ACTIONS,
    CONTEXTS,
    DEADLINES,
    GROUP_KINDS,
    LOOP_FAILURES,
    MODES,
    NON_COROUTINES,
    RAISABLE,
    SIGINT_HANDLERS,
    STEP_TYPES,
    TASK_FACTORIES,
    THREADS,
    Await,
    Call,
    Cancel,
    Executor,
    Group,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    ScenarioError,
    SetVar,
    SetVarCall,
    Spawn,
    TaskGraph,
    TaskSpec,
    Timeout,
    With,
    from_json,
)
from conformance.targets import load_target

ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = {"conformance", "reference", "strategies"}
LEAKY = "tests.fixtures.broken_runners:LeakyRunner"
FAITHFUL = "tests.fixtures.broken_runners:FaithfulRunner"

# Scenarios whose leftover coroutines ignore GeneratorExit at the final collection are part of the
# point; in this process (the interpreter's side) Python reports them as unraisable exceptions.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _scenario(
    mode: str, calls: List[Dict[str, Any]], debug: Any = None, loop_factory: bool = False, **runner: str
) -> Scenario:
    config = {"mode": mode, "debug": debug, "loop_factory": loop_factory, **runner}
    return from_json({"schema": 1, "runner": config, "calls": calls}, "<test>")


def _run(*tasks: Dict[str, Any], context: str = "runner") -> Dict[str, Any]:
    return {"call": "run", "main": {"tasks": list(tasks)}, "context": context}


def _t(*steps: Dict[str, Any], on_cancel: Any = None, fin: Any = None) -> Dict[str, Any]:
    spec: Dict[str, Any] = {"steps": list(steps)}
    if on_cancel is not None:
        spec["on_cancel"] = on_cancel
    if fin is not None:
        spec["finally"] = fin
    return spec


Y = {"op": "yield"}


def spawn(i: int) -> Dict[str, Any]:
    return {"op": "spawn", "task": i}


def wait(i: int, catch: bool = False) -> Dict[str, Any]:
    return {"op": "await", "task": i, "catch": catch}


def cancel(i: int, msg: Any = None) -> Dict[str, Any]:
    return {"op": "cancel", "task": i, "msg": msg}


def raise_(exc: str, arg: Any = None) -> Dict[str, Any]:
    return {"op": "raise", "exc": exc, "arg": arg}


def ret(value: Any = None) -> Dict[str, Any]:
    return {"op": "return", "value": value}


def set_(var: str, value: Any) -> Dict[str, Any]:
    return {"op": "set_var", "var": var, "value": value}


def get(var: str) -> Dict[str, Any]:
    return {"op": "get_var", "var": var}


def group(how: str, *tasks: int, **options: Any) -> Dict[str, Any]:
    return {"op": "group", "how": how, "tasks": list(tasks), **options}


def timeout(deadline: str, *steps: Dict[str, Any], catch: bool = False) -> Dict[str, Any]:
    return {"op": "timeout", "deadline": deadline, "catch": catch, "steps": list(steps)}


SIGINT_WAIT = {"op": "sigint_wait"}
#: Eager tasks exist from Python 3.12: only there can an eager task factory run.
EAGER = hasattr(asyncio, "eager_task_factory")


# (name, scenario, candidate, kind): together they use every step kind, every on_cancel action,
# finally steps, every mode, several runs, get_loop, close, nested with, set_var/get_var calls,
# every run_object, a sigint step and a sigint call, every group kind and deadline, SIGINTs from
# another process, every SIGINT handler setting, a runner driven from another thread, runner
# misuse (positional arguments, a loop the user closed) and every loop failure and task factory.
FIXED: List[Tuple[str, Scenario, str, str]] = [
    (
        "steps",
        _scenario(
            "with",
            [
                _run(
                    _t(
                        set_("a", 1),
                        get("a"),
                        {"op": "agen"},
                        {"op": "executor", "await": True},
                        {"op": "executor", "await": False},
                        spawn(1),
                        spawn(2),
                        Y,
                        wait(1, catch=True),
                        cancel(2, "stop"),
                        wait(2, catch=True),
                        get("b"),
                        ret("done"),
                    ),
                    _t(get("a"), {"op": "agen"}, raise_("ValueError", "x")),
                    _t(Y, Y, Y, on_cancel={"action": "swallow", "value": 7}),
                )
            ],
            debug=True,
        ),
        "asyncio",
        "runner",
    ),
    (
        "every-exception-close-mode",
        _scenario(
            "close",
            [
                _run(_t(raise_("RuntimeError"))),
                _run(_t(raise_("CancelledError", "c"))),
                _run(_t(Y, raise_("KeyboardInterrupt"))),
                _run(_t(raise_("SystemExit", "bye"))),
                _run(_t(spawn(1), wait(1)), _t(raise_("ValueError", "child"))),
                {"call": "close"},
                {"call": "close"},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "cleanup-and-finally",
        _scenario(
            "with",
            [
                _run(
                    _t(
                        spawn(1),
                        spawn(2),
                        spawn(3),
                        Y,
                        cancel(1),
                        cancel(2, "m2"),
                        wait(1, True),
                        wait(2, True),
                        ret(0),
                    ),
                    _t(Y, Y, on_cancel={"action": "cleanup", "steps": [get("a"), ret(5)]}),
                    _t(Y, on_cancel={"action": "cleanup", "steps": [Y]}, fin=[set_("b", "f"), ret("fin")]),
                    _t(Y, Y, Y, Y, on_cancel={"action": "cleanup", "steps": [Y, Y]}, fin=[Y, get("b")]),
                )
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "leftovers-cancelled-at-exit",
        _scenario(
            "with",
            [
                _run(
                    _t(spawn(1), spawn(2), Y, ret(1)),
                    _t(Y, Y, Y, fin=[Y, get("a")]),
                    _t(Y, Y, on_cancel={"action": "swallow", "value": "kept"}),
                ),
                {"call": "run", "main": {"tasks": [_t(Y, ret(2))]}},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "never-closed-gc-phase",
        _scenario(
            "close",
            [
                _run(
                    _t(spawn(1), spawn(2), spawn(3), Y, ret(None)),
                    _t(Y, {"op": "agen"}, Y, Y, fin=[get("a")]),
                    _t(raise_("ValueError", "never retrieved")),
                    _t(Y, Y, Y, fin=[Y]),
                ),
                {"call": "get_loop"},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "mode-run-runner",
        _scenario("run", [_run(_t(spawn(1), Y, raise_("ValueError", "x")), _t(Y, Y, Y))], debug=False),
        "asyncio",
        "runner",
    ),
    (
        "mode-run-function",
        _scenario("run", [_run(_t(spawn(1), {"op": "agen"}, ret("r")), _t(Y, Y, fin=[Y]))]),
        "asyncio.run",
        "run",
    ),
    (
        "run-objects",
        _scenario(
            "close",
            [{"call": "run_object", "object": o} for o in ("int", "none", "lambda", "generator", "awaitable")]
            + [{"call": "close"}],
        ),
        "asyncio",
        "runner",
    ),
    ("run-object-mode-run", _scenario("run", [{"call": "run_object", "object": "awaitable"}]), "asyncio", "runner"),
    (
        "get-loop-close-nested-with",
        _scenario(
            "with",
            [
                {"call": "get_loop"},
                {
                    "call": "with",
                    "calls": [
                        {"call": "get_loop"},
                        _run(_t(Y, ret(1))),
                        {"call": "with", "calls": [{"call": "get_var", "var": "a"}]},
                    ],
                },
                _run(_t(ret(2))),
                {"call": "close"},
                {"call": "get_loop"},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "context-variables",
        _scenario(
            "close",
            [
                {"call": "set_var", "var": "a", "value": "x"},
                _run(_t(get("a"), set_("a", "y"), get("a"))),
                {"call": "get_var", "var": "a"},
                _run(_t(get("a"), spawn(1), wait(1)), _t(get("a"), set_("c", 3)), context="fresh"),
                _run(_t(get("a"), set_("b", 2), get("b")), context="copy"),
                {"call": "get_var", "var": "b"},
                _run(_t(get("a"), get("b"))),
                {"call": "close"},
            ],
            loop_factory=True,
        ),
        "asyncio",
        "runner",
    ),
    (
        "sigint-step",
        _scenario(
            "with",
            [
                _run(
                    _t(spawn(1), Y, {"op": "sigint"}, Y, Y, on_cancel={"action": "cleanup", "steps": [Y]}),
                    _t(Y, Y, Y, Y),
                ),
                _run(_t(ret(1))),
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "sigint-call",
        _scenario("close", [{"call": "sigint"}, _run(_t(ret(1))), {"call": "sigint"}, {"call": "close"}]),
        "asyncio",
        "runner",
    ),
    (
        "sigint-mode-run",
        _scenario("run", [_run(_t(Y, {"op": "sigint"}, Y, on_cancel={"action": "swallow", "value": 9}))]),
        "asyncio.run",
        "run",
    ),
    (
        "cancel-main-and-not-yet-spawned",
        _scenario(
            "with",
            [
                _run(
                    _t(cancel(2), spawn(1), wait(1, True), on_cancel={"action": "cleanup", "steps": [wait(1, True)]}),
                    _t(cancel(2, "early"), spawn(2), cancel(0, "from child"), Y, cancel(2), wait(2, True), ret(4)),
                    _t(Y),
                ),
                _run(_t(wait(1), cancel(1), spawn(1)), _t(Y), context="copy"),
                _run(_t(Y, Y, fin=[spawn(1), wait(1, True)]), _t(cancel(0), ret(1))),
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "hostile-strings",
        _scenario(
            "close",
            [
                {"call": "set_var", "var": "a", "value": "'''\"\"\" {a} \\n \\x00"},
                _run(
                    _t(
                        spawn(1),
                        Y,
                        cancel(1, '"); import os; os._exit(3) #'),
                        wait(1, True),
                        get("a"),
                        set_("b", "caf\u00e9 \u2603 \U0001f600"),
                        get("b"),
                        raise_("ValueError", "at 0xdeadbeef <object> {x}"),
                    ),
                    _t(Y, Y, on_cancel={"action": "swallow", "value": "}{'\\"}),
                ),
                _run(_t(ret(-(2**31))), context="fresh"),
                _run(_t(ret(2**31 - 1))),
                {"call": "get_var", "var": "a"},
            ],
            debug=False,
        ),
        "asyncio",
        "runner",
    ),
    (
        "groups",
        _scenario(
            "with",
            [
                _run(
                    _t(
                        group("gather", 1, 2, return_exceptions=True),
                        group("wait", 3, 4, return_when="first_exception"),
                        group("shield", 5),
                        group("wait_for", 6, deadline="expired", catch=True),
                        group("taskgroup", 7, catch=True, steps=[Y, raise_("RuntimeError", "body")]),
                        ret("groups"),
                    ),
                    _t(Y, raise_("ValueError", "g1")),
                    _t(Y, ret(2)),
                    _t(Y, raise_("ValueError", "w3")),
                    _t(Y, Y, Y, on_cancel={"action": "swallow", "value": "late"}),
                    _t(Y, ret(5)),
                    _t(Y, ret(6)),
                    _t(Y, Y, on_cancel={"action": "cleanup", "steps": [Y]}),
                )
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "deadlines-uncancel-stop-loop",
        _scenario(
            "close",
            [
                _run(
                    _t(
                        spawn(1),
                        cancel(0),
                        timeout("expired", Y, Y, catch=True),
                        {"op": "uncancel"},
                        timeout("never", Y, get("a")),
                        group("wait_for", 2, deadline="never"),
                        {"op": "stop_loop"},
                        Y,
                        Y,
                    ),
                    _t(Y, Y, Y, on_cancel={"action": "cleanup", "steps": [{"op": "uncancel"}, ret("kept")]}),
                    _t(Y, ret(1)),
                ),
                {"call": "close"},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "nested-runs-and-agen-finally",
        _scenario(
            "with",
            [
                _run(
                    _t(
                        {"op": "nested_run", "how": "runner"},
                        {"op": "nested_run", "how": "run"},
                        {"op": "agen", "finally": [Y, raise_("ValueError", "agen")]},
                        {"op": "agen", "finally": [Y, Y]},
                        ret(1),
                    )
                )
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "sigint-from-outside",
        _scenario(
            "with",
            [
                _run(
                    _t(spawn(1), SIGINT_WAIT, Y, on_cancel={"action": "cleanup", "steps": [Y, SIGINT_WAIT]}),
                    _t(Y, Y, Y),
                ),
                _run(_t(group("taskgroup", 1, steps=[timeout("never", SIGINT_WAIT)])), _t(Y, Y)),
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "custom-sigint-handler",
        _scenario(
            "close",
            [
                _run(_t({"op": "sigint"}, SIGINT_WAIT, ret(1))),
                {"call": "sigint"},
                {"call": "close"},
            ],
            sigint_handler="custom",
        ),
        "asyncio",
        "runner",
    ),
    (
        "ignored-sigint-mode-run",
        _scenario(
            "run",
            [_run(_t({"op": "sigint"}, SIGINT_WAIT, {"op": "nested_run", "how": "run"}, ret(1)))],
            sigint_handler="ignored",
        ),
        "asyncio.run",
        "run",
    ),
    (
        "other-thread",
        _scenario(
            "with",
            [
                {"call": "set_var", "var": "a", "value": 1},
                _run(_t(get("a"), spawn(1), {"op": "executor", "await": True}, ret(1)), _t(Y, Y)),
                {"call": "get_loop"},
            ],
            thread="other",
        ),
        "asyncio",
        "runner",
    ),
    (
        "loop-factory-candidate",
        _scenario(
            "with",
            [_run(_t(spawn(1), {"op": "executor", "await": True}, Y), _t(Y, Y)), {"call": "get_loop"}],
            loop_factory=True,
        ),
        "asyncio:new_event_loop",
        "loop",
    ),
    (
        "runner-misuse",
        _scenario(
            "close",
            [
                {"call": "construct_positional"},
                {"call": "run_object", "object": "awaited"},
                {"call": "close_loop"},
                _run(_t(Y, ret(1))),
                {"call": "get_loop"},
                {"call": "close"},
            ],
            debug=True,
        ),
        "asyncio",
        "runner",
    ),
    (
        "from-inside-the-loop",
        _scenario(
            "with",
            [
                _run(
                    _t(
                        spawn(1),
                        {"op": "interrupt_main"},
                        Y,
                        on_cancel={"action": "cleanup", "steps": [{"op": "set_sigint_handler"}, {"op": "sigint"}, Y]},
                        fin=[{"op": "close_runner"}],
                    ),
                    _t(Y, Y, Y),
                ),
                {"call": "get_loop"},
            ],
        ),
        "asyncio",
        "runner",
    ),
    (
        "failing-set-debug-and-legacy-tasks",
        _scenario(
            "close",
            [{"call": "get_loop"}, _run(_t(spawn(1), {"op": "sigint"}, Y), _t(Y)), {"call": "close"}],
            debug=False,
            loop_fails="set_debug",
            task_factory="legacy",
        ),
        "asyncio",
        "runner",
    ),
    (
        "failing-factory-and-custom-tasks",
        _scenario(
            "close",
            [{"call": "get_loop"}, _run(_t(spawn(1), Y), _t(Y)), {"call": "close"}],
            loop_factory=True,
            loop_fails="create",
            task_factory="custom",
        ),
        "asyncio:new_event_loop",
        "loop",
    ),
    (
        "task-factory-mode-run",
        _scenario("run", [_run(_t(spawn(1), {"op": "sigint"}, Y), _t(Y))], task_factory="legacy"),
        "asyncio.run",
        "run",
    ),
    *(
        [
            (
                "eager-tasks",
                _scenario("with", [_run(_t(spawn(1), Y, wait(1)), _t(ret(2)))], task_factory="eager"),
                "asyncio",
                "runner",
            )
        ]
        if EAGER
        else []
    ),
]


# ------------------------------------------------------------------ helpers


#: Names of the program's own functions, which differ between the interpreter and a script:
#: a never-awaited coroutine in a warning, and a function handed to ``run`` in an error message
#: (``normalize_text`` keeps the qualified name of an object repr that contains nested ``<...>``).
_FUNCTION_NAMES = (
    (re.compile(r"coroutine '[^']*'"), "coroutine '(name)'"),
    (re.compile(r"<function [^\s'\"]*>"), "<function (name)>"),
)


def _comparable(observation: Dict[str, Any]) -> Dict[str, Any]:
    """Every recorded field, with the names of the program's own functions normalised."""
    calls = [
        {key: record[key] for key in ("call", "path", "outcome", "log", "reports", "tasks", "state")}
        for record in observation["calls"]
    ]
    end = {key: observation["end"][key] for key in ("loops", "log", "reports", "warnings")}
    text = json.dumps({"calls": calls, "end": end})
    for pattern, replacement in _FUNCTION_NAMES:
        text = pattern.sub(replacement, text)
    return json.loads(text)


def _interpreted(scenario: Scenario, spec: str, kind: Any = None) -> Dict[str, Any]:
    """What the interpreter records, in this process, taken as the script takes it.

    Two things the script does by running in a fresh process are done here by hand. Garbage that
    earlier scenarios left in reference cycles is collected first, or the interpreter would record
    its finalizers (a "never awaited" warning) as this scenario's. And the observation is read
    before any automatic collection can run: objects that the interpreter's clean-up releases in
    reference cycles would otherwise add lines to it at an arbitrary moment (the script keeps
    the collector off until it has printed its observation).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    gc.disable()
    try:
        # Through JSON so that tuples and lists compare as the script's JSON output does.
        text = json.dumps(execute(scenario, load_target(spec, kind)))
    finally:
        gc.enable()
    return _comparable(json.loads(text))


def _write(tmp_path: Path, text: str, name: str = "repro.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _environment() -> Dict[str, str]:
    env = dict(os.environ)
    # The script itself needs nothing of ours; the path is only for the fixture candidates.
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONWARNINGS", None)
    return env


def _side(script: Path, side: str) -> Dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script), "--side", side, "--json"],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=_environment(),
        timeout=60,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("OBSERVATION ")]
    assert done.returncode == 0 and len(lines) == 1, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    return _comparable(json.loads(lines[0][len("OBSERVATION ") :]))


def _reference_spec(kind: str) -> str:
    return "asyncio.run" if kind == "run" else "asyncio"


# -------------------------------------------------------------------- tests


def _candidate_spec(candidate: str, kind: str) -> str:
    """The candidate each fixed scenario's candidate side runs: a ``MODULE:ATTR`` twin of asyncio.Runner."""
    return FAITHFUL if kind == "runner" else candidate


@pytest.fixture(scope="module")
def fixed_sides(tmp_path_factory: pytest.TempPathFactory) -> Dict[Tuple[str, str], Any]:
    """Every fixed scenario's script, run once per side, several subprocesses at a time."""
    jobs = {}
    for name, scenario, candidate, kind in FIXED:
        folder = tmp_path_factory.mktemp(name)
        jobs[(name, "reference")] = _write(folder, render(scenario, candidate, kind), "reference.py")
        if kind != "run":
            jobs[(name, "candidate")] = _write(folder, render(scenario, _candidate_spec(candidate, kind), kind))

    def run(key: Tuple[str, str]) -> Any:
        try:
            return _side(jobs[key], key[1])
        except AssertionError as exc:  # reported by the test that needs it
            return exc

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return dict(zip(jobs, pool.map(run, jobs)))


def _result(fixed_sides: Dict[Tuple[str, str], Any], key: Tuple[str, str]) -> Dict[str, Any]:
    result = fixed_sides[key]
    if isinstance(result, AssertionError):
        raise result
    return result


@pytest.mark.parametrize("name, scenario, candidate, kind", FIXED, ids=[f[0] for f in FIXED])
def test_reference_side_records_what_the_interpreter_records(
    fixed_sides: Dict[Tuple[str, str], Any], name: str, scenario: Scenario, candidate: str, kind: str
) -> None:
    assert _result(fixed_sides, (name, "reference")) == _interpreted(scenario, _reference_spec(kind))


@pytest.mark.parametrize(
    "name, scenario, candidate, kind", [f for f in FIXED if f[3] != "run"], ids=[f[0] for f in FIXED if f[3] != "run"]
)
def test_candidate_side_records_what_the_interpreter_records_for_the_candidate(
    fixed_sides: Dict[Tuple[str, str], Any], name: str, scenario: Scenario, candidate: str, kind: str
) -> None:
    """The candidate side is faithful too: here a MODULE:ATTR target, imported only by the script."""
    spec = _candidate_spec(candidate, kind)
    assert _result(fixed_sides, (name, "candidate")) == _interpreted(scenario, spec, kind)


def test_fixed_set_covers_the_model() -> None:
    """The fixed scenarios really use every step, handler, mode and call kind the model has."""
    seen: Set[str] = set()

    def calls(items: Tuple[Call, ...], depth: int) -> None:
        for item in items:
            seen.add(f"call {item.call}")
            if isinstance(item, With):
                seen.add(f"with depth {depth + 1}")
                calls(item.calls, depth + 1)
            if isinstance(item, RunObject):
                seen.add(f"object {item.object}")
            if isinstance(item, Run):
                seen.add(f"context {item.context}")
                for spec in item.main.tasks:
                    seen.add(f"on_cancel {spec.on_cancel.action}")
                    for section, steps in (("steps", spec.steps), ("cleanup", spec.on_cancel.steps)):
                        seen.update(f"{section} {step.op}" for step in steps)
                    seen.update(f"finally {step.op}" for step in spec.finally_steps)
                    for step in spec.all_steps():
                        seen.add(f"step {step.op}")
                        if isinstance(step, (Await, Executor)):
                            seen.add(f"{step.op} {getattr(step, 'catch', getattr(step, 'wait', None))}")
                        if isinstance(step, Raise):
                            seen.add(f"raise {step.exc}")
                        if isinstance(step, Cancel):
                            seen.add(f"cancel msg {step.msg is not None}")

    for _, scenario, _, kind in FIXED:
        seen.add(f"mode {scenario.runner.mode}")
        seen.add(f"sigint_handler {scenario.runner.sigint_handler}")
        seen.add(f"thread {scenario.runner.thread}")
        seen.update(
            f"group {step.how}" if isinstance(step, Group) else f"{step.op} {step.deadline}"
            for run in scenario.runs()
            for spec in run.main.tasks
            for step in spec.all_steps()
            if isinstance(step, (Group, Timeout))
        )
        seen.add(f"kind {kind}")
        seen.add(f"debug {scenario.runner.debug}")
        seen.add(f"loop_factory {scenario.runner.loop_factory}")
        seen.add(f"loop_fails {scenario.runner.loop_fails}")
        seen.add(f"task_factory {scenario.runner.task_factory}")
        if len(scenario.runs()) > 1:
            seen.add("several runs")
        calls(scenario.calls, 0)
    expected = {f"step {t.op}" for t in STEP_TYPES} | {f"call {t.call}" for t in CALL_TYPES}
    expected |= {f"mode {m}" for m in MODES} | {f"on_cancel {a}" for a in CANCEL_ACTIONS}
    expected |= {f"object {o}" for o in NON_COROUTINES} | {f"context {c}" for c in CONTEXTS}
    expected |= {f"raise {e}" for e in RAISABLE} | {f"kind {k}" for k in ("runner", "run", "loop")}
    expected |= {"await True", "await False", "executor True", "executor False", "cancel msg True"}
    expected |= {"cancel msg False", "debug None", "debug True", "debug False", "loop_factory True"}
    expected |= {"several runs", "with depth 2", "finally return", "cleanup return", "finally yield"}
    expected |= {"cleanup yield", "cleanup await", "finally spawn", "steps sigint"}
    expected |= {f"group {how}" for how in GROUP_KINDS} | {f"timeout {d}" for d in DEADLINES}
    expected |= {f"sigint_handler {h}" for h in SIGINT_HANDLERS} | {f"thread {t}" for t in THREADS}
    expected |= {"cleanup sigint_wait", "cleanup uncancel", "cleanup set_sigint_handler", "finally close_runner"}
    expected |= {f"loop_fails {f}" for f in LOOP_FAILURES}
    expected |= {f"task_factory {f}" for f in TASK_FACTORIES if f != "eager" or EAGER}
    assert expected - seen == set()


# ------------------------------------------------------ generated scenarios

try:
    from hypothesis import HealthCheck, given, note, settings

    from strategies import scenarios
except ImportError as exc:  # pragma: no cover - depends on the checkout
    scenarios = None
    _NO_STRATEGIES = f"strategies.scenarios is not importable: {exc}"
else:
    _NO_STRATEGIES = ""


@pytest.mark.skipif(scenarios is None, reason=_NO_STRATEGIES or "-")
@pytest.mark.parametrize(
    "kind, candidate", [("runner", "asyncio"), ("run", "asyncio.run"), ("loop", "asyncio:new_event_loop")]
)
def test_generated_scenarios_record_what_the_interpreter_records(
    tmp_path_factory: pytest.TempPathFactory, kind: str, candidate: str
) -> None:
    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios(kind))
    def check(scenario: Scenario) -> None:
        note(scenario.dumps())
        script = _write(tmp_path_factory.mktemp("generated"), render(scenario, candidate, kind))
        assert _side(script, "reference") == _interpreted(scenario, _reference_spec(kind))

    check()


# ------------------------------------------------------------ standalone


IMPORT_CASES = [
    ("asyncio", "runner", "steps"),
    ("asyncio.run", "run", "mode-run-function"),
    (LEAKY, "runner", "get-loop-close-nested-with"),
    ("tests.fixtures.broken_runners:LeakyRunner.close", "run", "sigint-mode-run"),
    ("asyncio:new_event_loop", "loop", "loop-factory-candidate"),
    ("uvloop", "loop", "loop-factory-candidate"),
    ("reference", "runner", "run-objects"),
]


@pytest.mark.parametrize("candidate, kind, name", IMPORT_CASES)
def test_script_imports_only_the_standard_library_and_the_candidate(candidate: str, kind: str, name: str) -> None:
    scenario = next(s for n, s, _, _ in FIXED if n == name)
    text = render(scenario, candidate, kind)
    tree = ast.parse(text)
    candidate_function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "candidate")
    inside = {id(n) for n in ast.walk(candidate_function)}
    candidate_module = {"asyncio": None, "asyncio.run": None, "uvloop": "uvloop", "reference": "reference"}.get(
        candidate, candidate.split(":")[0].split(".")[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not (isinstance(node, ast.ImportFrom) and node.level), "relative import"
            for top in {name.split(".")[0] for name in names}:
                if id(node) in inside and top == candidate_module:
                    continue  # the candidate's own module, imported only when the candidate side runs
                assert top in sys.stdlib_module_names and top not in OUR_PACKAGES, (top, ast.unparse(node))
        if isinstance(node, ast.Name) and node.id in ("__import__", "importlib", "exec", "eval"):
            raise AssertionError(f"dynamic import or evaluation: {node.id}")
    module_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(n, ast.Import) for n in module_level)


def test_reference_side_runs_in_an_isolated_interpreter_far_from_the_repository(tmp_path: Path) -> None:
    """``python -I`` from another directory: no PYTHONPATH, no current directory, no user site."""
    _, scenario, candidate, kind = FIXED[0]
    script = _write(tmp_path, render(scenario, candidate, kind))
    done = subprocess.run(
        [sys.executable, "-I", str(script), "--side", "reference", "--json"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    observation = json.loads(done.stdout.splitlines()[-1][len("OBSERVATION ") :])
    assert _comparable(observation) == _interpreted(scenario, "asyncio")


def test_scenario_comment_is_the_scenario(tmp_path: Path) -> None:
    """The JSON in the comment block loads back to the very scenario; rendering is deterministic."""
    _, scenario, candidate, kind = next(f for f in FIXED if f[0] == "hostile-strings")
    text = render(scenario, candidate, kind)
    assert text == render(scenario, candidate, kind)
    lines = text.splitlines()
    start = lines.index("# The scenario (conformance scenario JSON, schema 1):") + 2
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line[2:])
    assert from_json(json.loads("\n".join(block))) == scenario
    assert text.startswith('"""Reproducer:')
    compile(text, "repro.py", "exec")


# -------------------------------------------------------------- two sides


def _traces(output: str) -> Dict[str, str]:
    """The reference and candidate traces of a two-sided run, by side."""
    parts = re.split(r"^=== (reference|candidate): .* ===$", output, flags=re.M)
    traces = dict(zip(parts[1::2], parts[2::2]))
    traces["candidate"] = traces["candidate"].split("\n=== The two traces", 1)[0]
    return {side: trace.strip("\n") + "\n" for side, trace in traces.items()}


def test_script_shows_a_runner_that_leaves_a_pending_child(tmp_path: Path) -> None:
    """LeakyRunner's close() does not cancel leftovers: the two traces differ, and say how."""
    # The child yields more often than closing the loop iterates, so a leaky close leaves it pending.
    scenario = _scenario("with", [_run(_t(spawn(1), Y, ret(1)), _t(*[Y] * 12, fin=[get("a")]))])
    script = _write(tmp_path, render(scenario, LEAKY, "runner"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=str(ROOT), env=_environment(), timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"=== candidate: {LEAKY} (a Runner-like class) ===" in done.stdout
    assert "=== The two traces differ: ===" in done.stdout
    traces = _traces(done.stdout)
    assert traces["reference"] != traces["candidate"]
    # The reference cancels the child when the block exits; the candidate leaves it pending, and
    # the final collection destroys it.
    assert "    | r0.t1 cancelled CancelledError()" in traces["reference"]
    assert "r0.t1 cancelled" not in traces["candidate"]
    assert "tasks: r0.t0 returned 1, r0.t1 cancelled\n" in traces["reference"]
    assert traces["candidate"].count("tasks: r0.t0 returned 1, r0.t1 pending\n") == 2  # after run, and after exit
    assert "exception handler: Task was destroyed but it is pending! (task r0.t1)" in traces["candidate"]
    # Each side in JSON is exactly what the interpreter records under that side's target.
    assert _side(script, "candidate") == _interpreted(scenario, LEAKY, "runner")
    assert _side(script, "reference") == _interpreted(scenario, "asyncio")


def test_script_says_when_the_sides_agree(tmp_path: Path) -> None:
    _, scenario, _, _ = next(f for f in FIXED if f[0] == "leftovers-cancelled-at-exit")
    script = _write(tmp_path, render(scenario, FAITHFUL, "runner"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=str(ROOT), env=_environment(), timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    traces = _traces(done.stdout)
    assert traces["reference"] == traces["candidate"]
    assert "$.exit exit -> returned None" in traces["reference"]
    assert "end: loop0 closed; SIGINT handler default" in traces["reference"]
    assert "=== The two traces are the same. ===" in done.stdout


# ------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "candidate, kind, mode, reference, message",
    [
        ("os:system; import shutil", "runner", "with", "asyncio", "not a dotted Python name"),
        ("os.path :join", "runner", "with", "asyncio", "not a dotted Python name"),
        ("class:Runner", "runner", "with", "asyncio", "not a dotted Python name"),
        ("nocolon", "runner", "with", "asyncio", "unknown candidate"),
        ("asyncio", "loop", "with", "asyncio", "cannot be used as a loop"),
        ("m:f", "sideways", "with", "asyncio", "unknown candidate kind"),
        ("asyncio.run", "run", "with", "asyncio", "only mode 'run'"),
        ("asyncio", "runner", "with", "asyncio.run", "only mode 'run'"),
        ("asyncio", "runner", "with", "uvloop", "cannot be rendered"),
        ("asyncio", "runner", "with", "m:Runner", "cannot be rendered"),
    ],
)
def test_render_refuses_what_it_cannot_render_safely(
    candidate: str, kind: str, mode: str, reference: str, message: str
) -> None:
    scenario = _scenario(mode, [_run(_t(ret(1)))])
    with pytest.raises(ReproducerError, match=re.escape(message)):
        render(scenario, candidate, kind, reference)


@pytest.mark.parametrize(
    "call",
    [
        Run(TaskGraph((TaskSpec((Return("x" * 41),)),))),
        Run(TaskGraph((TaskSpec((Cancel(0, "line\nbreak"),)),))),
        Run(TaskGraph((TaskSpec((SetVar("a", True),)),))),  # type: ignore[arg-type]
        Run(TaskGraph((TaskSpec((SetVar("z", 1),)),))),
        Run(TaskGraph((TaskSpec((Raise("OSError", "x"),)),))),
        Run(TaskGraph((TaskSpec((Spawn(1),)), TaskSpec((Spawn(1),))))),
        SetVarCall("a", 2**40),
    ],
)
def test_render_validates_scenarios_built_in_python(call: Call) -> None:
    """Only validated data reaches the script: a scenario built in code goes through the loader."""
    with pytest.raises(ScenarioError):
        render(Scenario(RunnerConfig("close"), (call,)), "asyncio", "runner")


def test_a_side_found_under_another_interpreter_runs_there_by_default(tmp_path):
    """``NAME@PYTHON`` findings: the script runs the candidate side under that interpreter unless told otherwise."""
    elsewhere = tmp_path / "other-python"
    elsewhere.symlink_to(sys.executable)
    scenario = _scenario("with", [_run(_t(ret(7)))])
    script = _write(tmp_path, render(scenario, "asyncio", "runner", pythons={"candidate": str(elsewhere)}))

    def both(*options: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(script), *options]
        return subprocess.run(command, capture_output=True, text=True, env=_environment(), timeout=120)

    by_default = both()
    assert by_default.returncode == 0, by_default.stdout + by_default.stderr
    assert f"=== candidate: the standard library's asyncio.Runner === (under {elsewhere})" in by_default.stdout
    assert "=== reference: the standard library's asyncio.Runner ===\n" in by_default.stdout
    told = both("--candidate-python", sys.executable)
    assert told.returncode == 0 and "(under" not in told.stdout
