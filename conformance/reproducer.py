"""Reproducers: a scenario rendered as one standalone Python script in plain asyncio code.

``render(scenario, candidate, candidate_kind)`` returns the text of a script
that an asyncio developer can read and run without this project: it imports
only the standard library and, on the candidate's side only, the candidate's
own module. The script

* defines each task of each ``run`` call as an ``async def`` (``r0_t0``,
  ``r0_t1``, ...) whose steps are straight-line code, and the program's calls
  as ``scenario()``;
* records what ``conformance.interpreter`` records (the same log lines, call
  outcomes, task states, exception-handler reports, process state, and what
  the final garbage collection reports), so that its trace is the
  interpreter's observation;
* run without arguments, runs itself once per side (reference, then
  candidate), each in a fresh subprocess of the same interpreter, prints both
  traces and says whether they differ; ``--side NAME`` runs one side in
  process, ``--json`` makes that side print its observation as one JSON line.

The reference in a script is always the standard library's own asyncio
(``asyncio.Runner``, or ``asyncio.run`` for a run-function candidate), which is
what the suite's reference specifies.

Nothing from the scenario is pasted into the script as text: the scenario is
validated (a JSON round trip through ``conformance.scenario``) and its values
appear only as ``repr()`` literals; target specs are checked to be dotted
identifiers before they become import statements.

Where the task code mirrors the interpreter's structure (a task is an outer
coroutine awaiting its body coroutine; ``try``/``except CancelledError``/
``finally`` nesting; which objects are kept alive until the end) it does so on
purpose: those choices decide what happens when a leftover coroutine is closed
by the garbage collector.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

from conformance.interpreter import DEADLINE_S, group_name
from conformance.outside_sigint import SENDER_PATH
from conformance.scenario import (
    AsyncGen,
    Await,
    Call,
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
    Raise,
    Return,
    Run,
    RunObject,
    Scenario,
    SetSigintHandler,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    SigintWait,
    Spawn,
    Step,
    StopLoop,
    TaskSpec,
    Timeout,
    Uncancel,
    Value,
    With,
    Yield,
    iter_calls,
    loads,
    nested_steps,
    spawned_by,
)
from conformance.targets import KINDS

__all__ = ["ReproducerError", "render"]

_KIND_TEXT = {
    "runner": "a Runner-like class",
    "run": "an asyncio.run-like function",
    "loop": "a loop factory for asyncio.Runner(loop_factory=...)",
}

_EXCEPTION_EXPR = {
    "ValueError": "ValueError",
    "RuntimeError": "RuntimeError",
    "CancelledError": "asyncio.CancelledError",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "SystemExit": "SystemExit",
}

_RUN_OBJECTS = {
    "int": "1",
    "none": "None",
    "lambda": "lambda: None",
    "generator": "keep(x for x in ())",
    "awaitable": "Awaitable()",
    "awaited": "keep(awaited_coroutine())",
}


class ReproducerError(ValueError):
    """The scenario and targets cannot be rendered as a reproducer (the message says why)."""


# ------------------------------------------------------------------ sides


@dataclass(frozen=True)
class _Side:
    """One side of the script: what it imports and how it builds a runner or run function."""

    spec: str
    kind: str  # runner | run | loop
    description: str
    #: ``import`` lines (inside the side's function); the names below are bound by them.
    imports: Tuple[str, ...] = ()
    #: The Runner class (kind runner/loop: ``asyncio.Runner`` drives a loop factory).
    runner_class: str = "asyncio.Runner"
    #: The run function (kind run).
    run_function: str = ""
    #: The loop factory the side passes when the program uses one.
    loop_factory: str = "asyncio.new_event_loop"
    #: Whether the module is looked up in the current directory too.
    local_module: bool = False


def _dotted(text: str, what: str, spec: str) -> Tuple[str, ...]:
    parts = tuple(text.split("."))
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        raise ReproducerError(f"{what} {text!r} of {spec!r} is not a dotted Python name")
    return parts


def _candidate_side(spec: str, kind: str) -> _Side:
    if kind not in KINDS:
        raise ReproducerError(f"unknown candidate kind {kind!r}; expected one of {', '.join(KINDS)}")
    builtin_kind = {"asyncio": "runner", "asyncio.run": "run", "uvloop": "loop"}.get(spec)
    builtin_kind = builtin_kind or {"reference": "runner", "reference.run": "run"}.get(spec)
    if builtin_kind is not None and builtin_kind != kind:
        raise ReproducerError(f"{spec!r} is a {builtin_kind} target and cannot be used as a {kind}")
    if spec == "asyncio":
        return _Side(spec, kind, "the standard library's asyncio.Runner")
    if spec == "asyncio.run":
        return _Side(spec, kind, "the standard library's asyncio.run", run_function="asyncio.run")
    if spec == "uvloop":
        return _Side(
            spec,
            kind,
            "uvloop.new_event_loop, driven by asyncio.Runner",
            imports=("import uvloop",),
            loop_factory="uvloop.new_event_loop",
        )
    if spec in ("reference", "reference.run"):
        spec = "reference:Runner" if spec == "reference" else "reference:run"
    if ":" not in spec:
        raise ReproducerError(f"unknown candidate {spec!r}: use asyncio, asyncio.run, uvloop or MODULE:ATTR")
    module_text, _, attr_text = spec.partition(":")
    module = ".".join(_dotted(module_text, "module", spec))
    attrs = _dotted(attr_text, "attribute", spec)
    alias = {"runner": "Candidate", "run": "candidate_run", "loop": "candidate_loop_factory"}[kind]
    imports = [f"from {module} import {attrs[0]} as {alias if len(attrs) == 1 else 'candidate_root'}"]
    if len(attrs) > 1:
        imports.append(f"{alias} = candidate_root.{'.'.join(attrs[1:])}")
    description = f"{spec} ({_KIND_TEXT[kind]})"
    if kind == "runner":
        return _Side(spec, kind, description, tuple(imports), runner_class=alias, local_module=True)
    if kind == "run":
        return _Side(spec, kind, description, tuple(imports), run_function=alias, local_module=True)
    return _Side(spec, kind, description, tuple(imports), loop_factory=alias, local_module=True)


def _reference_side(spec: str, candidate_kind: str) -> _Side:
    """The standard library counterpart of the candidate (the script must not import our ``reference``)."""
    if spec not in ("asyncio", "asyncio.run", "reference", "reference.run"):
        raise ReproducerError(
            f"reference {spec!r} cannot be rendered: a reproducer's reference is the standard library "
            "(asyncio, asyncio.run, or their counterparts reference, reference.run)"
        )
    if spec.endswith(".run") or candidate_kind == "run":
        return _Side("asyncio.run", "run", "the standard library's asyncio.run", run_function="asyncio.run")
    return _Side("asyncio", "runner", "the standard library's asyncio.Runner")


# ----------------------------------------------------------------- output


class _Code:
    """Lines of Python with an indentation level."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.depth = 0

    def __call__(self, text: str = "") -> None:
        self.lines.append("    " * self.depth + text if text else "")

    @contextlib.contextmanager
    def indent(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def text(self) -> str:
        return "\n".join(self.lines)


def _q(text: str) -> str:
    """A string literal for ``text``: its ``repr``, never the text pasted into code.

    Where ``repr`` escapes nothing and the text has no double quote, the same literal is
    written in double quotes (the value is the same; only the style changes).
    """
    literal = repr(text)
    if literal == f"'{text}'" and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return literal


def _lit(value: Value) -> str:
    """A literal for a scenario value (``None``, an int or a validated string)."""
    return _q(value) if isinstance(value, str) else repr(value)


def _pretty_json(value: Any, width: int = 96) -> List[str]:
    """JSON, one line where it fits in ``width`` and broken into items where it does not."""
    flat = json.dumps(value, ensure_ascii=True)
    if len(flat) <= width or not isinstance(value, (dict, list)) or not value:
        return [flat]
    is_dict = isinstance(value, dict)
    items = list(value.items()) if is_dict else [(None, v) for v in value]
    lines = ["{" if is_dict else "["]
    for index, (key, item) in enumerate(items):
        prefix = "" if key is None else json.dumps(key, ensure_ascii=True) + ": "
        sub = _pretty_json(item, width - 2)
        sub[0] = prefix + sub[0]
        if index < len(items) - 1:
            sub[-1] += ","
        lines += ["  " + line for line in sub]
    lines.append("}" if is_dict else "]")
    return lines


# -------------------------------------------------------------- rendering


def render(
    scenario: Scenario,
    candidate: str,
    candidate_kind: str,
    reference: str = "asyncio",
    pythons: Optional[Dict[str, str]] = None,
) -> str:
    """The text of a standalone script running ``scenario`` under the reference and the candidate.

    ``candidate`` is ``asyncio``, ``asyncio.run``, ``uvloop`` or ``MODULE:ATTR`` of kind
    ``candidate_kind`` (runner, run or loop). ``reference`` is ``asyncio`` (``asyncio.Runner``,
    or ``asyncio.run`` when the candidate is a run function) or ``asyncio.run``; ``reference``
    and ``reference.run`` name the same standard-library code. Raises ``ScenarioError`` for an
    invalid scenario and ``ReproducerError`` for targets or combinations that cannot be rendered.
    ``pythons`` maps a side (``reference``, ``candidate``) to the interpreter it ran under, when
    the two sides ran under different ones (``NAME@PYTHON`` specs): the script runs each side
    there by default (Python 3.9 and PyPy have no ``asyncio.Runner`` for the reference side).
    """
    checked = loads(scenario.dumps(), "<scenario to render>")
    cand = _candidate_side(candidate, candidate_kind)
    ref = _reference_side(reference, cand.kind)
    mode = checked.runner.mode
    if cand.kind == "run" and mode != "run":
        raise ReproducerError(f"a run-function candidate runs only mode 'run' scenarios, not mode {mode!r}")
    if ref.kind == "run" and mode != "run":
        raise ReproducerError(f"reference {reference!r} runs only mode 'run' scenarios, not mode {mode!r}")
    return _Renderer(checked, cand, ref, dict(pythons or {})).render()


class _Renderer:
    def __init__(self, scenario: Scenario, candidate: _Side, reference: _Side, pythons: Dict[str, str]) -> None:
        self.scenario = scenario
        self.pythons = pythons
        self.candidate = candidate
        self.reference = reference
        self.config = scenario.runner
        # The same labels as the interpreter: r<i> for the i-th run call in program order.
        self.run_labels = {id(run): f"r{i}" for i, run in enumerate(scenario.runs())}
        self.run_paths: Dict[str, str] = {}
        self._collect_paths(scenario.calls, "$.calls")
        steps = [step for run in scenario.runs() for task in run.main.tasks for step in task.all_steps()]
        calls = list(iter_calls(scenario.calls))
        self.uses = {
            "agen": any(isinstance(s, AsyncGen) for s in steps),
            "executor": any(isinstance(s, Executor) for s in steps),
            "awaitable": any(isinstance(c, RunObject) and c.object == "awaitable" for c in calls),
            "set_var": any(isinstance(c, SetVarCall) for c in calls),
            "group": any(isinstance(s, Group) for s in steps),
            "taskgroup": any(isinstance(s, Group) and s.how == "taskgroup" for s in steps),
            "nested_run": any(isinstance(s, NestedRun) for s in steps),
            "sigint_wait": any(isinstance(s, SigintWait) for s in steps),
            "awaited": any(isinstance(c, RunObject) and c.object == "awaited" for c in calls),
            "close_loop": any(isinstance(c, CloseLoop) for c in calls),
            "close_runner": any(isinstance(s, CloseRunner) for s in steps),
            "interrupt_main": any(isinstance(s, InterruptMain) for s in steps),
            "hooks": scenario.runner.loop_fails != "never" or scenario.runner.task_factory != "none",
        }
        #: id(agen step) -> the name of the async generator function rendered for its ``finally`` steps.
        self.agen_functions: Dict[int, str] = {}

    def _collect_paths(self, calls: Tuple[Call, ...], path: str) -> None:
        for index, call in enumerate(calls):
            if isinstance(call, With):
                self._collect_paths(call.calls, f"{path}[{index}].calls")
            elif isinstance(call, Run):
                self.run_paths.setdefault(self.run_labels[id(call)], f"{path}[{index}]")

    # ---------------------------------------------------------- the file

    def render(self) -> str:
        code = _Code()
        self._header(code)
        imports = _IMPORTS + (("itertools",) if self.uses["agen"] or self.uses["executor"] else ())
        imports += ("_thread",) if self.uses["interrupt_main"] else ()
        for module in sorted(imports):
            code(f"import {module}")
        code()
        code(_PRELUDE.strip("\n"))
        for use, helpers in (
            ("agen", _AGEN_HELPERS),
            ("executor", _EXECUTOR_HELPERS),
            ("awaitable", _AWAITABLE),
            ("set_var", _SET_VAR),
            ("group", _GROUP_HELPERS),
            ("taskgroup", _TASK_GROUP),
            ("nested_run", _NESTED_RUN),
            ("sigint_wait", _SIGINT_WAIT),
            ("awaited", _AWAITED),
            ("close_loop", _CLOSE_LOOP),
            ("close_runner", _CLOSE_RUNNER),
            ("hooks", _LOOP_HOOKS),
        ):
            if self.uses[use]:
                code()
                code()
                code(helpers.strip("\n"))
        if self.uses["sigint_wait"]:
            code()
            code()
            code("# The program that sends the SIGINT (conformance/sigint_sender.py), run as a separate process.")
            code(f"SENDER_SOURCE = r'''{_sender_source()}'''")
        self._agen_functions(code)
        code()
        code()
        self._tasks(code)
        self._program(code)
        self._sides(code)
        code(_HARNESS.strip("\n"))
        return code.text() + "\n"

    def _header(self, code: _Code) -> None:
        cand, ref = self.candidate, self.reference
        summary = _wrap(", ".join(_call_summary(c) for c in self.scenario.calls), 100, "           ")
        code('"""Reproducer: the candidate and the reference disagree on one scenario (found by runner-conformance).')
        code()
        code(f"Candidate: {cand.description}.")
        code(f"Reference: {ref.description}.")
        config = self.config
        extra = "" if config.sigint_handler == "default" else f", SIGINT handler {config.sigint_handler!r}"
        extra += "" if config.thread == "main" else ", driven from another thread"
        code(f"Program:   mode {config.mode!r}, debug={config.debug}, loop_factory={config.loop_factory}{extra}.")
        code(f"Calls:     {summary}.")
        code()
        code("`scenario()` below makes the program's calls; the tasks are the `async def r<run>_t<task>` functions.")
        code("Each side prints a trace: per call `call -> outcome`, what the tasks logged, the state of every task")
        code("after the call, and at the end whether the event loops are closed, whether the SIGINT handler is")
        code("back to the default one and what the final garbage collection reported.")
        code()
        code("Run it (only the standard library and the candidate's module are needed):")
        code()
        code("    python3 THIS_FILE                     # both sides, each in a fresh subprocess; exit status 1 if")
        code("                                          # their traces differ")
        code("    python3 THIS_FILE --side reference    # one side, in this process")
        code("    python3 THIS_FILE --side candidate --json")
        code("    python3 THIS_FILE --candidate-python PATH   # a side under another interpreter")
        for name, python in sorted(self.pythons.items()):
            code()
            code(f"The {name} side ran under {python} when this was found; it runs there by default.")
        if cand.local_module:
            module = cand.imports[0].split()[1]
            code()
            code(f"Run it where `{module}` can be imported (the current directory is searched too).")
        code('"""')
        code()
        code("# The scenario (conformance scenario JSON, schema 1):")
        code("#")
        for line in _pretty_json(self.scenario.to_json()):
            code(f"# {line}")
        code()

    # --------------------------------------------------------- the tasks

    def _tasks(self, code: _Code) -> None:
        code("# " + "-" * 100)
        code("# The tasks: one `async def` per task of each `run` call (r0_t1 is task 1 of the first run call)")
        code("# " + "-" * 100)
        code()
        code("# The context variables the tasks and the program use.")
        code('a = contextvars.ContextVar("a")')
        code('b = contextvars.ContextVar("b")')
        code('c = contextvars.ContextVar("c")')
        done: Set[str] = set()
        for run in self.scenario.runs():
            run_label = self.run_labels[id(run)]
            if run_label in done:
                continue
            done.add(run_label)
            parents = _parents(run.main.tasks)
            for index in range(len(run.main.tasks)):
                code()
                code()
                self._task(code, run_label, run.main.tasks, index, parents)
        code()
        code()

    def _task(self, code: _Code, run_label: str, specs: Tuple[TaskSpec, ...], index: int, parents: Dict) -> None:
        label = f"{run_label}.t{index}"
        spec = specs[index]
        code(f'@task("{label}"{", main=True" if index == 0 else ""})')
        code(f"async def {_function(label)}():")
        with code.indent():
            if index == 0:
                code(f'"""The main coroutine of the run call at {self.run_paths[run_label]}."""')
            else:
                code(f'"""Spawned by {run_label}.t{parents[index]}."""')
            if spec.finally_steps:
                code("try:")
                with code.indent():
                    self._body_and_handler(code, label, spec)
                code("finally:")
                with code.indent():
                    code(f'log.append("{label} finally")')
                    self._steps(code, label, spec.finally_steps, f"{label}.finally", in_finally=True)
            else:
                self._body_and_handler(code, label, spec)

    def _body_and_handler(self, code: _Code, label: str, spec: TaskSpec) -> None:
        code("try:")
        with code.indent():
            self._steps(code, label, spec.steps, f"{label}.steps")
        code("except asyncio.CancelledError as cancelled:")
        with code.indent():
            code(f'log.append(f"{label} cancelled {{fmt(cancelled)}}")')
            action = spec.on_cancel.action
            if action == "swallow":
                code(f"return {_lit(spec.on_cancel.value)}  # on_cancel: swallow")
            elif action == "cleanup":
                code("# on_cancel: cleanup, then re-raise")
                if not self._steps(code, label, spec.on_cancel.steps, f"{label}.cleanup"):
                    code("raise")
            else:
                code("raise  # on_cancel: propagate")

    def _steps(self, code: _Code, label: str, steps: Tuple[Step, ...], path: str, in_finally: bool = False) -> bool:
        """Straight-line code for a list of steps; True if it ends in ``return`` or ``raise``.

        ``path`` names the list as the interpreter does (``r0.t0.steps``, ``r0.t0.cleanup``,
        ``r0.t0.steps[2].steps``), for the origin of the exceptions the steps raise.
        """
        run_label = label.split(".")[0]
        spawned: Set[str] = set()  # children certainly registered by now: spawned earlier in this list
        if not steps:
            code("pass")
        for position, step in enumerate(steps):
            if isinstance(step, Yield):
                code("await asyncio.sleep(0)")
                code(f'log.append("{label} yield")')
            elif isinstance(step, Spawn):
                child = f"{run_label}.t{step.task}"
                code(f'log.append("{label} spawn {child}")')
                code(f'tasks["{child}"] = asyncio.ensure_future({_function(child)}())')
                spawned.add(child)
            elif isinstance(step, Await):
                child = f"{run_label}.t{step.task}"
                with self._if_registered(code, label, "await", child, spawned):
                    self._await(code, label, child, step.catch)
            elif isinstance(step, Cancel):
                victim = f"{run_label}.t{step.task}"
                with self._if_registered(code, label, "cancel", victim, spawned):
                    argument = "" if step.msg is None else _q(step.msg)
                    code(f'accepted = tasks["{victim}"].cancel({argument})')
                    code(f'log.append(f"{label} cancel {victim} -> {{accepted}}")')
            elif isinstance(step, Raise):
                self._raise(code, f'"{label}', step, f"{path}[{position}]")
                return True
            elif isinstance(step, Return):
                code(f"log.append({_q(f'{label} return {step.value!r}')})")
                note = "  # noqa: B012 - a `return` in `finally` is a scenario step" if in_finally else ""
                code(f"return {_lit(step.value)}{note}")
                return True
            elif isinstance(step, Sigint):
                code(f'log.append("{label} sigint")')
                code("signal.raise_signal(signal.SIGINT)")
            elif isinstance(step, SetVar):
                code(f"{step.var}.set({_lit(step.value)})")
                code(f"log.append({_q(f'{label} set {step.var}={step.value!r}')})")
            elif isinstance(step, GetVar):
                code(f'log.append(f"{label} get {step.var} -> {{{step.var}.get(UNSET)!r}}")')
            elif isinstance(step, AsyncGen):
                generator = self.agen_functions.get(id(step), "suspended_agen")
                code(f'await start_agen("{label}", {generator})')
            elif isinstance(step, Executor):
                code(f'await executor_job("{label}", wait={step.wait})')
            elif isinstance(step, Group):
                self._group(code, label, step, f"{path}[{position}].steps", spawned, in_finally)
            elif isinstance(step, Timeout):
                self._timeout(code, label, step, f"{path}[{position}].steps", in_finally)
            elif isinstance(step, Uncancel):
                code(f'log.append(f"{label} uncancel -> {{asyncio.current_task().uncancel()}}")')
            elif isinstance(step, StopLoop):
                code(f'log.append("{label} stop_loop")')
                code("asyncio.get_running_loop().stop()")
            elif isinstance(step, NestedRun):
                code(f'nested_run("{label}", "{step.how}")')
            elif isinstance(step, SigintWait):
                code(f'await sigint_wait("{label}")')
            elif isinstance(step, CloseRunner):
                code(f'close_runner("{label}")')
            elif isinstance(step, InterruptMain):
                code(f'log.append("{label} interrupt_main")')
                code("_thread.interrupt_main()")
            elif isinstance(step, SetSigintHandler):
                code(f'log.append("{label} set_sigint_handler")')
                code("signal.signal(signal.SIGINT, custom_sigint_handler)")
            else:  # pragma: no cover - the model has no other step
                raise TypeError(f"unknown step {step!r}")
        return False

    @staticmethod
    def _raise(code: _Code, label_literal: str, step: Raise, origin: str) -> None:
        """``raise`` of a fresh exception marked with its step; ``label_literal`` opens the log line's literal."""
        argument = "" if step.arg is None else _q(step.arg)
        code(f'exc = from_step({_EXCEPTION_EXPR[step.exc]}({argument}), "{origin}")')
        code(f'log.append(f{label_literal} raise {{fmt(exc)}}")')
        code("raise exc")

    def _group(self, code: _Code, label: str, step: Group, path: str, spawned: Set[str], in_finally: bool) -> None:
        """A group step: spawn the children, wait for them as the step says, log the outcome."""
        run_label = label.split(".")[0]
        children = [f"{run_label}.t{index}" for index in step.tasks]
        name = group_name(step)
        code(f'log.append("{label} {name} [{", ".join(children)}]")')
        spawned.update(children)
        if step.how != "taskgroup":
            for child in children:
                code(f'tasks["{child}"] = asyncio.ensure_future({_function(child)}())')
        code("try:")
        with code.indent():
            if step.how == "taskgroup":
                code("async with task_group() as group:")
                with code.indent():
                    for child in children:
                        code(f'tasks["{child}"] = group.create_task({_function(child)}())')
                    if step.steps:
                        self._steps(code, label, step.steps, path, in_finally)
            else:
                first = f'tasks["{children[0]}"]'
                if step.how == "gather":
                    arguments = ", ".join(f'tasks["{child}"]' for child in children)
                    option = ", return_exceptions=True" if step.return_exceptions else ""
                    code(f"results = await asyncio.gather({arguments}{option})")
                elif step.how == "wait":
                    arguments = ", ".join(f'tasks["{child}"]' for child in children)
                    code(f"done, _ = await asyncio.wait([{arguments}], return_when=asyncio.{step.return_when.upper()})")
                elif step.how == "shield":
                    code(f"value = await asyncio.shield({first})")
                else:
                    code(f"value = await asyncio.wait_for({first}, {DEADLINE_S[step.deadline]})")
        self._wait_handlers(code, label, name, step.catch)
        if step.how == "taskgroup":
            return
        code("else:")
        with code.indent():
            if step.how == "gather":
                code(f'log.append(f"{label} {name} -> {{results_text(results)}}")')
            elif step.how == "wait":
                code(f'log.append(f"{label} {name} -> {{done_and_pending(done, {children!r})}}")')
            else:
                code(f'log.append(f"{label} {name} -> {{value!r}}")')

    def _timeout(self, code: _Code, label: str, step: Timeout, path: str, in_finally: bool) -> None:
        name = f"timeout({step.deadline})"
        code(f'log.append("{label} {name}")')
        code("try:")
        with code.indent():
            code(f"async with asyncio.timeout({DEADLINE_S[step.deadline]}):")
            with code.indent():
                self._steps(code, label, step.steps, path, in_finally)
        self._wait_handlers(code, label, name, step.catch)

    @staticmethod
    def _wait_handlers(code: _Code, label: str, name: str, catch: bool) -> None:
        """The ``except`` clauses after a group or timeout: log what leaves it raising; ``catch`` keeps Exceptions."""
        if catch:
            code("except Exception as error:  # caught: the step has `catch`")
            with code.indent():
                code(f'log.append(f"{label} {name} raised {{fmt(error)}}")')
        code("except BaseException as error:")
        with code.indent():
            code(f'log.append(f"{label} {name} raised {{fmt(error)}}")')
            code("raise")

    def _agen_functions(self, code: _Code) -> None:
        """One async generator function per ``agen`` step with ``finally`` steps (the others share one)."""
        for run in self.scenario.runs():
            run_label = self.run_labels[id(run)]
            for index, task in enumerate(run.main.tasks):
                for path, step in _task_steps_with_paths(task, f"{run_label}.t{index}"):
                    if isinstance(step, AsyncGen) and step.finally_steps and id(step) not in self.agen_functions:
                        function = f"agen_{len(self.agen_functions)}"
                        self.agen_functions[id(step)] = function
                        code()
                        code()
                        code(f"async def {function}(name):")
                        with code.indent():
                            code(f'"""The async generator of step {path}: its `finally` block awaits or raises."""')
                            code("try:")
                            with code.indent():
                                code("yield 1")
                                code("yield 2")
                            code("except BaseException as exc:")
                            with code.indent():
                                code('log.append(f"{name} closed by {type(exc).__name__}")')
                                code("raise")
                            code("finally:")
                            with code.indent():
                                code('log.append(f"{name} finally")')
                                for position, inner in enumerate(step.finally_steps):
                                    if isinstance(inner, Yield):
                                        code("await asyncio.sleep(0)")
                                        code('log.append(f"{name} yield")')
                                    else:
                                        assert isinstance(inner, Raise)
                                        self._raise(code, '"{name}', inner, f"{path}.finally[{position}]")
                                        break  # what follows a raise never runs

    @contextlib.contextmanager
    def _if_registered(self, code: _Code, label: str, verb: str, other: str, spawned: Set[str]) -> Iterator[None]:
        """``other`` may not be registered yet (as the interpreter checks): guard the code unless it surely is."""
        if other in spawned:
            yield
            return
        code(f'if "{other}" not in tasks:')
        with code.indent():
            code(f'log.append("{label} {verb} {other} skipped: not spawned")')
        code("else:")
        with code.indent():
            yield

    def _await(self, code: _Code, label: str, child: str, catch: bool) -> None:
        code("try:")
        with code.indent():
            code(f'value = await tasks["{child}"]')
        if catch:
            code("except Exception as error:  # caught: the step has `catch`")
            with code.indent():
                code(f'log.append(f"{label} await {child} raised {{fmt(error)}}")')
        code("except BaseException as error:")
        with code.indent():
            code(f'log.append(f"{label} await {child} raised {{fmt(error)}}")')
            code("raise")
        code("else:")
        with code.indent():
            code(f'log.append(f"{label} await {child} -> {{value!r}}")')

    # ------------------------------------------------------- the program

    def _program(self, code: _Code) -> None:
        mode = self.config.mode
        code("# " + "-" * 100)
        code("# The program")
        code("# " + "-" * 100)
        code()
        code()
        if mode == "run":
            code("def scenario(run_function):")
            with code.indent():
                code('"""The program: one asyncio.run-like call."""')
                (call,) = self.scenario.calls
                code(f'call("{call.call}", "$.calls[0]", lambda: run_function({self._main_object(call)}))')
        else:
            code("def scenario(make_runner):")
            with code.indent():
                if mode == "with":
                    code('"""The program: `with runner:` around the calls.')
                else:
                    code('"""The program: `runner = Runner()`, then the calls (closing is up to them).')
                code()
                code("Every call is recorded by `call(name, path, action)`. A `with runner:` block is entered and")
                code("exited by explicit calls so that each outcome is recorded; as in the suite, a call that")
                code("raises inside the block is recorded and does not end the block.")
                code('"""')
                code("runner = make_runner()")
                if mode == "with":
                    self._with(code, self.scenario.calls, "$")
                else:
                    self._calls(code, self.scenario.calls, "$.calls")
        code()
        code()

    def _with(self, code: _Code, calls: Tuple[Call, ...], path: str) -> None:
        code("# with runner:")
        code(f'if call("enter", "{path}.enter", runner.__enter__):')
        with code.indent():
            self._calls(code, calls, f"{path}.calls")
            code(f'call("exit", "{path}.exit", lambda: runner.__exit__(None, None, None))')

    def _calls(self, code: _Code, calls: Tuple[Call, ...], path: str) -> None:
        for index, call in enumerate(calls):
            where = f"{path}[{index}]"
            if isinstance(call, With):
                self._with(code, call.calls, where)
            elif isinstance(call, Run):
                context = {
                    "runner": "",
                    "fresh": ", context=contextvars.Context()",
                    "copy": ", context=contextvars.copy_context()",
                }[call.context]
                code(f'call("run", "{where}", lambda: runner.run({self._main_object(call)}{context}))')
            elif isinstance(call, RunObject):
                code(f'call("run_object", "{where}", lambda: runner.run({self._main_object(call)}))')
            elif isinstance(call, GetLoop):
                code(f'call("get_loop", "{where}", runner.get_loop)')
            elif isinstance(call, Close):
                code(f'call("close", "{where}", runner.close)')
            elif isinstance(call, SetVarCall):
                code(f'call("set_var", "{where}", lambda: set_var({call.var}, {_lit(call.value)}))')
            elif isinstance(call, GetVarCall):
                code(f'call("get_var", "{where}", lambda: {call.var}.get(UNSET))')
            elif isinstance(call, SigintCall):
                code(f'call("sigint", "{where}", lambda: signal.raise_signal(signal.SIGINT))')
            elif isinstance(call, ConstructPositional):
                debug = self.config.debug
                code(f"# The runner's class, given debug={debug} positionally.")
                code(f'call("construct_positional", "{where}", lambda: keep(type(runner)({debug})))')
            elif isinstance(call, CloseLoop):
                code(f'call("close_loop", "{where}", lambda: close_loop(runner))')
            else:  # pragma: no cover - the model has no other call
                raise TypeError(f"unknown call {call!r}")

    def _main_object(self, call: Call) -> str:
        if isinstance(call, Run):
            return f"{_function(self.run_labels[id(call)] + '.t0')}()"
        assert isinstance(call, RunObject)
        return _RUN_OBJECTS[call.object]

    # --------------------------------------------------------- the sides

    def _sides(self, code: _Code) -> None:
        code("# " + "-" * 100)
        code("# The two sides: what builds the runner (or runs the program) on each")
        code("# " + "-" * 100)
        code()
        code(f'MODE = "{self.config.mode}"')
        code(f'SIGINT_HANDLER = "{self.config.sigint_handler}"  # the SIGINT handler installed before the runner')
        code(f'THREAD = "{self.config.thread}"  # the thread that drives the runner')
        code(f"OUTSIDE_SIGINT = {self.uses['sigint_wait']}  # whether a step waits for a SIGINT from another process")
        code(f'LOOP_FAILS = "{self.config.loop_fails}"  # how the first event loop the program asks for fails')
        code(f'TASK_FACTORY = "{self.config.task_factory}"  # the task factory of every loop of the program')
        hooked_policy = self.uses["hooks"] and not self.config.loop_factory
        code(f"HOOKED_POLICY = {hooked_policy}  # whether the runner's loops come from a policy through the hooks")
        code()
        code()
        self._side(code, "reference", self.reference)
        code()
        code()
        self._side(code, "candidate", self.candidate)
        code()
        code()
        code("#: The interpreter each side runs under by default (None: this script's own).")
        code("PYTHONS = {")
        with code.indent():
            for name in ("reference", "candidate"):
                code(f"{name!r}: {self.pythons.get(name)!r},")
        code("}")
        code()
        code()
        code("SIDES = {")
        with code.indent():
            code(f'"reference": (reference, {_q(self.reference.description)}),')
            code(f'"candidate": (candidate, {_q(self.candidate.description)}),')
        code("}")
        code()
        code()

    def _side(self, code: _Code, name: str, side: _Side) -> None:
        config = self.config
        # A loop-factory candidate is always driven with its factory, and the reference then uses
        # asyncio.new_event_loop as its factory, so that the loop is the only difference.
        uses_factory = config.loop_factory or self.candidate.kind == "loop"
        options = []
        if config.debug is not None:
            options.append(f"debug={config.debug}")
        if side.kind == "loop" or (uses_factory and side.kind != "run") or (side.kind == "run" and config.loop_factory):
            factory = f"lambda: hooked_loop({side.loop_factory})" if self.uses["hooks"] else side.loop_factory
            options.append(f"loop_factory={factory}")
        arguments = ", ".join(options)
        if self.config.mode == "run":
            code(f"def {name}():")
            with code.indent():
                code(f'"""{name.capitalize()}: return a function doing what `asyncio.run(main)` does."""')
                self._side_imports(code, side)
                if side.kind == "run":
                    extra = f", {arguments}" if arguments else ""
                    code(f"return lambda main: {side.run_function}(main{extra})")
                else:
                    code()
                    code("def run(main):")
                    with code.indent():
                        code(f"with {side.runner_class}({arguments}) as runner:")
                        with code.indent():
                            code("return runner.run(main)")
                    code()
                    code("return run")
        else:
            code(f"def {name}():")
            with code.indent():
                code(f'"""{name.capitalize()}: return a function making the program\'s runner."""')
                self._side_imports(code, side)
                code(f"return lambda: {side.runner_class}({arguments})")

    def _side_imports(self, code: _Code, side: _Side) -> None:
        if side.local_module:
            code("# Like the suite, look for the candidate's module in the current directory too.")
            code("sys.path.insert(0, os.getcwd())")
        for line in side.imports:
            code(line)


def _sender_source() -> str:
    """The text of ``conformance/sigint_sender.py``, which a script embeds (our own code, not scenario data)."""
    with open(SENDER_PATH, encoding="utf-8") as handle:
        source = handle.read()
    if "'''" in source or source.endswith("\\"):
        raise ReproducerError("conformance/sigint_sender.py cannot be embedded in a raw triple-quoted string")
    return source


def _task_steps_with_paths(spec: TaskSpec, label: str) -> Iterator[Tuple[str, Step]]:
    """Every step of a task with its path as the interpreter names it (``r0.t0.steps[1].finally``)."""
    for section, steps in (("steps", spec.steps), ("cleanup", spec.on_cancel.steps), ("finally", spec.finally_steps)):
        yield from _list_steps_with_paths(steps, f"{label}.{section}")


def _list_steps_with_paths(steps: Tuple[Step, ...], path: str) -> Iterator[Tuple[str, Step]]:
    for position, step in enumerate(steps):
        yield f"{path}[{position}]", step
        inner = "finally" if isinstance(step, AsyncGen) else "steps"
        yield from _list_steps_with_paths(nested_steps(step), f"{path}[{position}].{inner}")


def _wrap(text: str, width: int, indent: str) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters, continued with ``indent``."""
    lines = [""]
    for word in text.split(" "):
        if lines[-1] and len(indent) + len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return f"\n{indent}".join(lines)


def _function(label: str) -> str:
    return label.replace(".", "_")


def _parents(specs: Tuple[TaskSpec, ...]) -> Dict[int, int]:
    parents: Dict[int, int] = {}
    for index, spec in enumerate(specs):
        for step in spec.all_steps():
            for child in spawned_by(step):
                parents[child] = index
    return parents


def _call_summary(call: Call) -> str:
    if isinstance(call, Run):
        n = len(call.main.tasks)
        context = "" if call.context == "runner" else f", {call.context} context"
        return f"run ({n} task{'s' if n != 1 else ''}{context})"
    if isinstance(call, RunObject):
        return f"run({call.object})"
    if isinstance(call, With):
        return "with [" + ", ".join(_call_summary(c) for c in call.calls) + "]"
    if isinstance(call, (SetVarCall, GetVarCall)):
        return f"{call.call} {call.var}"
    return call.call


# ------------------------------------------------------------- templates
#
# Fixed code, the same in every reproducer. It mirrors conformance/interpreter.py
# (the observation it records), in plain standard-library Python.

_IMPORTS = (
    "argparse",
    "asyncio",
    "builtins",
    "contextvars",
    "difflib",
    "functools",
    "gc",
    "json",
    "os",
    "re",
    "signal",
    "subprocess",
    "sys",
    "threading",
    "time",
    "warnings",
)

_PRELUDE = r'''
# What the tasks log during the current call of the program (each call starts a fresh list).
log = []
# What the event loop's exception handler received during the current call.
reports = []
# Every task of the program by label: "r0.t1" is task 1 of the first `run` call.
tasks = {}
# id(coroutine) -> the label of its task, for every task coroutine the program makes.
coroutine_labels = {}
# Every coroutine, async generator and executor future the program makes, kept alive until the
# end, so that garbage collection (and what it reports) happens in one known phase.
keep_alive = []
UNSET = "<unset>"


def keep(obj):
    keep_alive.append(obj)
    return obj


def task(label, main=False):
    """Decorator for a task's body: log its start and how it ended, around the body."""

    def decorate(body):
        @functools.wraps(body)
        async def run_task():
            if main:
                loop = asyncio.get_running_loop()
                loop.set_exception_handler(on_loop_exception)
                current = asyncio.current_task()
                if current is not None:
                    tasks[label] = current
                log.append(f"{label} start {loop_label(loop)} debug={loop.get_debug()}")
            else:
                log.append(f"{label} start")
            try:
                value = await body()
            except BaseException as exc:
                log.append(f"{label} exit raised {fmt(exc)}")
                raise
            else:
                log.append(f"{label} exit returned {value!r}")
                return value

        def make():
            coroutine = keep(run_task())
            coroutine_labels[id(coroutine)] = label  # for a task factory's log
            return coroutine

        return make

    return decorate


def from_step(exc, step):
    """Mark an exception with the scenario step that raises it (to tell it from a copy)."""
    exc.scenario_step = step
    return exc
'''

_AGEN_HELPERS = r'''
agen_numbers = itertools.count()


async def start_agen(label, generator):
    """Start an async generator with a `finally` and leave it suspended (it stays referenced)."""
    name = f"{label.split('.')[0]}.g{next(agen_numbers)}"
    agen = keep(generator(name))
    await agen.__anext__()
    log.append(f"{label} agen {name} started")


async def suspended_agen(name):
    try:
        yield 1
        yield 2
    except BaseException as exc:
        log.append(f"{name} closed by {type(exc).__name__}")
        raise
    finally:
        log.append(f"{name} finally")
'''

_EXECUTOR_HELPERS = r'''
executor_numbers = itertools.count()


async def executor_job(label, wait):
    """Submit an instant job to the loop's default executor without racing the loop.

    The loop thread blocks until the job has run. An awaited job resolves our own future with
    call_soon_threadsafe before it signals, so the resolution sits at a fixed place in the ready
    queue. The future run_in_executor returns is kept but never awaited.
    """
    loop = asyncio.get_running_loop()
    name = f"{label.split('.')[0]}.e{next(executor_numbers)}"
    ran = threading.Event()
    result = loop.create_future() if wait else None

    def job():
        if result is not None:
            loop.call_soon_threadsafe(resolve, result, name)
        ran.set()
        return name

    keep(loop.run_in_executor(None, job))
    if not ran.wait(10.0):
        raise RuntimeError(f"executor job {name} did not run within 10.0 s")
    log.append(f"{label} executor {name} ran")
    if result is not None:
        value = await result
        log.append(f"{label} executor {value} awaited")


def resolve(future, value):
    if not future.done():
        future.set_result(value)
'''

_AWAITABLE = r'''
class Awaitable:
    """An object with `__await__` that is not a coroutine."""

    def __await__(self):
        return (yield from asyncio.sleep(0).__await__()) or "awaitable"
'''

_GROUP_HELPERS = r'''
def results_text(results):
    """What gather returned: exceptions (return_exceptions) in log form, values as their repr."""
    return "[" + ", ".join(fmt(r) if isinstance(r, BaseException) else repr(r) for r in results) + "]"


def done_and_pending(done, labels):
    """What asyncio.wait returned, by label in the group's order (never in set order)."""
    finished = [label for label in labels if tasks[label] in done]
    unfinished = [label for label in labels if tasks[label] not in done]
    return f"done [{', '.join(finished)}] pending [{', '.join(unfinished)}]"
'''

_TASK_GROUP = r'''
class CreationOrderedTasks:
    """A TaskGroup's set of tasks, iterated in the order the tasks were added.

    TaskGroup cancels its remaining children by iterating a set, an order CPython leaves open (it
    follows addresses). Creation order is one of the orders it allows; the suite uses it on every
    side, and so does this script, so that the trace is reproducible.
    """

    def __init__(self):
        self._tasks = {}

    def add(self, task):
        self._tasks[task] = None

    def discard(self, task):
        self._tasks.pop(task, None)

    def __iter__(self):
        return iter(list(self._tasks))

    def __len__(self):
        return len(self._tasks)


def task_group():
    group = asyncio.TaskGroup()
    group._tasks = CreationOrderedTasks()
    return group
'''

_NESTED_RUN = r'''
async def nested_main():
    """The coroutine handed to a nested run: a conforming runner never starts it."""


def nested_run(label, how):
    """Call run() from inside the running loop (the runner's, or the asyncio.run-like function)."""
    coroutine = keep(nested_main())
    log.append(f"{label} nested_run {how}")
    run = held[0].run if how == "runner" else run_function
    try:
        value = run(coroutine)
    except Exception as error:
        log.append(f"{label} nested_run {how} raised {fmt(error)}")
    else:
        log.append(f"{label} nested_run {how} -> {describe_value(value)!r}")
'''

_SIGINT_WAIT = r'''
class OutsideSigint:
    """The SIGINT sender (SENDER_SOURCE, another process), on while a step waits and a call is running.

    The sender fires only while this process's main thread is blocked waiting for I/O (the event
    loop has nothing else to do), once per such wait: where the signal lands does not depend on
    timing.
    """

    def __init__(self):
        self.process = None
        self.supported = None
        self.waiting = 0
        self.in_call = False
        self.firing = False

    def start(self):
        if self.supported is None:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", SENDER_SOURCE, str(os.getpid()), str(threading.get_native_id())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                self.supported = self.read() == "ready"
            except OSError:
                self.supported = False
            if not self.supported:
                self.close()
        return self.supported

    def arm(self):
        self.waiting += 1
        self.update()

    def disarm(self):
        self.waiting -= 1
        self.update()

    def resume(self):
        self.in_call = True
        self.update()

    def pause(self):
        self.in_call = False
        self.update()

    def close(self):
        process, self.process = self.process, None
        if process is None:
            return
        try:
            process.stdin.write(b"exit\n")
            process.stdin.flush()
        except OSError:
            pass
        process.stdin.close()
        process.stdout.close()
        process.wait(5)

    def update(self):
        firing = self.waiting > 0 and self.in_call
        if self.process is None or firing == self.firing:
            return
        self.process.stdin.write(b"on\n" if firing else b"off\n")
        self.process.stdin.flush()
        if self.read() != "ok":
            raise RuntimeError("the SIGINT sender stopped answering")
        self.firing = firing

    def read(self):
        return self.process.stdout.readline().decode("ascii", "replace").strip()


async def sigint_wait(label):
    """Wait until a SIGINT sent from outside, while the loop is idle, releases this (main) task."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        log.append(f"{label} sigint_wait skipped: SIGINT is ignored")
        return
    if not outside.start():
        log.append(f"{label} sigint_wait skipped: the loop cannot be watched from outside here")
        return
    release = asyncio.get_running_loop().create_future()
    sigint_waits.append(release)
    log.append(f"{label} sigint_wait")
    outside.arm()
    try:
        await release
    finally:
        outside.disarm()
        sigint_waits.remove(release)
    log.append(f"{label} sigint_wait released")
'''

_AWAITED = r'''
async def finished():
    return "finished"


def awaited_coroutine():
    """A coroutine that has already been awaited to its end: running it again fails."""
    coroutine = finished()
    try:
        coroutine.send(None)
    except StopIteration:
        pass
    return coroutine
'''

_CLOSE_LOOP = r'''
def close_loop(runner):
    """The user closes the runner's loop (seen by the program, so it gets its label)."""
    loop = runner.get_loop()
    loop_label(loop)
    loop.close()
'''

_CLOSE_RUNNER = r'''
def close_runner(label):
    """runner.close() from inside a task of the runner's own running loop; log what it raised."""
    log.append(f"{label} close_runner")
    try:
        value = held[0].close()
    except Exception as error:
        log.append(f"{label} close_runner raised {fmt(error)}")
    else:
        log.append(f"{label} close_runner -> {describe_value(value)!r}")
'''

_LOOP_HOOKS = r'''
loops_asked = 0  # loops the runner asked for so far


def hooked_loop(make):
    """A loop made by `make` for a runner: the first one fails as LOOP_FAILS says; each gets TASK_FACTORY.

    Each loop is labelled as it is made, so that one the runner abandons is known.
    """
    global loops_asked
    first = loops_asked == 0
    loops_asked += 1
    if first and LOOP_FAILS == "create":
        raise from_step(RuntimeError("loop creation failed"), "$.runner.loop_fails")
    loop = make()
    loop_label(loop)
    if first and LOOP_FAILS == "set_debug":
        loop.set_debug = failing_set_debug
    if TASK_FACTORY != "none":
        loop.set_task_factory(task_factory)
    return loop


def failing_set_debug(enabled):
    raise from_step(RuntimeError("set_debug failed"), "$.runner.loop_fails")


class HookedPolicy(asyncio.DefaultEventLoopPolicy):
    """The default event-loop policy, making its loops through hooked_loop (used without a loop factory)."""

    def new_event_loop(self):
        return hooked_loop(super().new_event_loop)


class TaskWithoutUncancel(asyncio.Task):
    """A Task class as written before Python 3.11, without uncancel() (the main task of TASK_FACTORY "legacy")."""

    @property
    def uncancel(self):
        raise AttributeError("uncancel")


def task_factory(loop, coro, **kwargs):
    """Log each of the program's tasks as it is made (was it given a context, which SIGINT handler is
    installed), and make it: eagerly ("eager"), or the main task without uncancel() ("legacy")."""
    label = coroutine_labels.get(id(coro))
    if label is not None:
        log.append(f"{label} task_factory context={kwargs.get('context') is not None} sigint={sigint_state()}")
    if TASK_FACTORY == "eager":
        kwargs["eager_start"] = True
    main = label is not None and label.endswith(".t0")
    task_class = TaskWithoutUncancel if TASK_FACTORY == "legacy" and main else asyncio.Task
    return task_class(coro, loop=loop, **kwargs)
'''

_SET_VAR = r"""
def set_var(variable, value):
    variable.set(value)  # the Token is not the call's result
"""

_HARNESS = r'''
# ----------------------------------------------------------------------------------------------------
# Recording: what happened, in the form the conformance suite's interpreter records it
# ----------------------------------------------------------------------------------------------------

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")
COROUTINE_OWNER = re.compile(r"coroutine '(?:[\w<>]+\.)+(\w+)'")
OBJECT_REPR = re.compile(r"<[^<>]*>")
AGEN_LINE = re.compile(r"r\d+\.g\d+ ")
THREAD_GRACE_S = 0.2
threads_before = set()  # the threads that existed before the program started
records = []  # one per call of the program
loops = []  # every event loop seen, in order of appearance: "loop0", "loop1", ...
held = []  # the program's runner, kept alive until the end like everything else
ended_labels = {}  # id(task) -> label, for what garbage collection reports at the end
sigint_waits = []  # the futures of sigint_wait steps waiting now
run_function = None  # the side's asyncio.run-like function (for nested runs)
VERBOSE = True


class NoSender:
    """Stands in for the SIGINT sender when no step waits for a SIGINT from outside."""

    def resume(self):
        pass

    def pause(self):
        pass

    def close(self):
        pass


outside = OutsideSigint() if OUTSIDE_SIGINT else NoSender()


def custom_sigint_handler(signum, frame):
    """The program's own Ctrl-C handler (sigint_handler "custom"): it logs, and releases sigint_wait steps."""
    log.append("sigint custom handler")
    for release in sigint_waits:
        loop = release.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(resolve_release, release)


def resolve_release(future):
    if not future.done():
        future.set_result("custom handler")


def install_sigint_handler():
    """The SIGINT handler the program starts with, installed before any runner exists."""
    if SIGINT_HANDLER == "custom":
        signal.signal(signal.SIGINT, custom_sigint_handler)
    elif SIGINT_HANDLER == "ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_in_new_runner(make_runner, main):
    """What asyncio.run(main) does, with a runner of the side (for a nested run in modes with/close)."""
    with make_runner() as runner:
        return runner.run(main)


def run_program(target):
    """Make the program's calls in the main thread, or in another one (THREAD "other", in a fresh context)."""
    if THREAD == "main":
        scenario(target)
        return
    failures = []

    def drive():
        try:
            contextvars.Context().run(scenario, target)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=drive, name="scenario-runner")
    threads_before.add(thread)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def normalize_text(text):
    """Drop what is not behaviour from a message: addresses and object reprs."""
    text = text.split("\n", 1)[0]
    text = ADDRESS.sub("", text)
    text = COROUTINE_OWNER.sub(r"coroutine '\1'", text)
    previous = None
    while previous != text:  # innermost reprs first, so nested ones collapse into one
        previous, text = text, OBJECT_REPR.sub("\x00", text)
    return text.replace("\x00", "<\u2026>")


def normalize_arg(arg):
    if arg is None or isinstance(arg, (bool, int)):
        return arg
    if isinstance(arg, str):
        return normalize_text(arg)
    return normalize_text(repr(arg))


def fmt(exc):
    """One-line form of an exception: ValueError('x'); a group lists its exceptions the same way."""
    if isinstance(exc, getattr(builtins, "BaseExceptionGroup", ())):
        return f"{type(exc).__name__}({normalize_arg(exc.message)!r}, [{', '.join(map(fmt, exc.exceptions))}])"
    return f"{type(exc).__name__}({', '.join(repr(normalize_arg(arg)) for arg in exc.args)})"


def describe_exception(exc, depth=0):
    summary = {"type": type(exc).__name__, "args": [normalize_arg(arg) for arg in exc.args]}
    origin = getattr(exc, "scenario_step", None)
    if origin is not None:
        summary["origin"] = origin
    if depth == 0:
        for link in ("__cause__", "__context__"):
            linked = getattr(exc, link)
            if linked is not None:
                summary[link.strip("_")] = describe_exception(linked, depth + 1)
        nested = getattr(exc, "exceptions", None)
        if isinstance(nested, tuple):
            summary["exceptions"] = [describe_exception(e, depth + 1) for e in nested]
    return summary


def loop_label(loop):
    for index, seen in enumerate(loops):
        if seen is loop:
            return f"loop{index}"
    loops.append(loop)
    return f"loop{len(loops) - 1}"


def describe_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, asyncio.AbstractEventLoop):
        return loop_label(value)
    if held and value is held[0]:
        return "<runner>"
    return f"<{type(value).__name__}>"


def label_of(subject):
    for label, known in tasks.items():
        if known is subject:
            return label
    return ended_labels.get(id(subject), "other")


def on_loop_exception(loop, context):
    """The loop's exception handler (set by each main task): record the call instead of logging it."""
    exc = context.get("exception")
    subject = context.get("task") or context.get("future")
    reports.append(
        {
            "message": normalize_text(str(context.get("message", ""))),
            "exception": None if exc is None else fmt(exc),
            "task": None if subject is None else label_of(subject),
        }
    )


def task_state(task):
    """A task's state, read without marking its exception as retrieved."""
    if not task.done():
        cancelling = getattr(task, "cancelling", None)
        return "pending (cancel requested)" if cancelling is not None and cancelling() else "pending"
    if task.cancelled():
        return "cancelled"
    exc = getattr(task, "_exception", None) if hasattr(task, "_exception") else task.exception()
    if exc is not None:
        return f"raised {fmt(exc)}"
    return f"returned {task.result()!r}"


def loop_state(loop):
    if loop.is_running():
        return "running"
    return "closed" if loop.is_closed() else "open"


def sigint_state():
    handler = signal.getsignal(signal.SIGINT)
    if handler is signal.default_int_handler:
        return "default"
    if handler is custom_sigint_handler:
        return "custom"
    if handler in (signal.SIG_IGN, signal.SIG_DFL):
        return signal.Handlers(handler).name
    return "other"


def process_state():
    """What a runner leaves behind in the process: the thread's event loop and SIGINT."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    thread_loop = getattr(local, "_loop", None)
    if thread_loop is None:
        loop_state_text = "none"
    elif any(thread_loop is seen for seen in loops):
        loop_state_text = loop_label(thread_loop)
    else:
        loop_state_text = "other"
    return {"thread_loop": loop_state_text, "sigint": sigint_state()}


def threads_left():
    """Whether threads the program started are still alive (after a short grace join)."""
    deadline = time.monotonic() + THREAD_GRACE_S
    for thread in threading.enumerate():
        if thread not in threads_before and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return any(t.is_alive() for t in threading.enumerate() if t not in threads_before)


def agens_unordered(lines):
    """Sort each run of consecutive async-generator lines by generator label.

    shutdown_asyncgens closes a loop's generators in an unspecified order; each generator's own
    lines stay in order, only the order among generators is dropped (as in the suite).
    """
    out, run = [], []
    for line in [*lines, ""]:
        if AGEN_LINE.match(line):
            run.append(line)
            continue
        out.extend(sorted(run, key=lambda entry: entry.split(" ", 1)[0]))
        run = []
        if line:
            out.append(line)
    return out


def begin(record):
    """Make `record` the current one: from now on the tasks log to it."""
    global log, reports
    if VERBOSE and records:
        show_call(records[-1])
    log, reports = record["log"], record["reports"]


def call(name, path, action):
    """Make one call of the program; record its outcome and the state after it. True if it returned."""
    global log
    record = {"call": name, "path": path, "log": [], "reports": []}
    begin(record)
    records.append(record)
    try:
        outside.resume()  # an outside SIGINT may come only while the program is inside a call
        try:
            value = action()
        finally:
            outside.pause()
    except BaseException as exc:
        record["outcome"] = {"raised": describe_exception(exc)}
        returned = False
    else:
        record["outcome"] = {"returned": describe_value(value)}
        returned = True
    record["reports"].sort(key=repr)
    record["log"] = log = agens_unordered(record["log"])
    record["tasks"] = {label: task_state(t) for label, t in tasks.items()}
    record["state"] = process_state()
    if name in ("close", "exit") or MODE == "run":
        record["state"]["threads"] = threads_left()
    return returned


def finish(caught):
    """Release everything the program made, collect it, and record the aftermath."""
    end = {"log": [], "reports": []}
    begin(end)
    end_loops = {f"loop{index}": loop_state(loop) for index, loop in enumerate(loops)}
    sigint = sigint_state()
    # Loops left open are closed inside the recording, as the suite does, and a leftover
    # SIGINT handler (which holds its main task) is removed first.
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for loop in loops:
        if not loop.is_closed() and not loop.is_running():
            loop.close()
    threads_left()  # an executor worker that just ran a job may still hold it (and a task) for a moment
    ended_labels.update((id(t), label) for label, t in tasks.items())
    tasks.clear()
    keep_alive.clear()
    held.clear()
    gc.collect()
    gc.collect()
    # Which of several unreachable objects the collector finalizes first is not behaviour:
    # keep each label's own order, nothing across labels.
    end["log"].sort(key=lambda line: line.split(" ", 1)[0])
    end["reports"].sort(key=repr)
    end["loops"] = end_loops
    end["warnings"] = sorted(f"{w.category.__name__}: {normalize_text(str(w.message))}" for w in caught)
    end["sigint"] = sigint
    return end


def observe(side):
    """Run the program on one side's runner (or run function); return calls and aftermath."""
    global run_function
    factory = side()
    if MODE == "run":
        target = run_function = factory
    else:

        def target():
            held.append(factory())
            return held[0]

        run_function = functools.partial(run_in_new_runner, factory)

    asyncio.set_event_loop_policy(None)
    if HOOKED_POLICY:
        asyncio.set_event_loop_policy(HookedPolicy())
    threads_before.update(threading.enumerate())
    # No automatic collection while the program runs (it would make reports come and go), nor until
    # the trace is printed: what restore() releases in reference cycles would otherwise be finalized
    # at an arbitrary moment, and its log lines and reports land in the end record or not.
    gc.disable()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            install_sigint_handler()
            run_program(target)
            end = finish(caught)
    finally:
        global log, reports
        log, reports = [], []  # later reports belong to no record, as in the suite
        restore()
        outside.close()
    return {"calls": records, "end": end}


def restore():
    """Undo what the runner left behind, as the suite does once it has recorded the end."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for loop in loops:
        if not loop.is_closed() and not loop.is_running():
            loop.close()
    loops.clear()
    asyncio.set_event_loop_policy(None)


# ----------------------------------------------------------------------------------------------------
# The trace, and running both sides
# ----------------------------------------------------------------------------------------------------


def exception_text(summary):
    text = f"{summary['type']}({', '.join(repr(arg) for arg in summary['args'])})"
    if "origin" in summary:
        text += f" [raised by step {summary['origin']}]"
    for link in ("cause", "context"):
        if link in summary:
            text += f" ({link}: {exception_text(summary[link])})"
    if "exceptions" in summary:
        text += " [" + ", ".join(exception_text(e) for e in summary["exceptions"]) + "]"
    return text


def report_text(report):
    text = report["message"]
    if report["exception"] is not None:
        text += f": {report['exception']}"
    if report["task"] is not None:
        text += f" (task {report['task']})"
    return text


def show_call(record):
    outcome = record["outcome"]
    if "raised" in outcome:
        result = "raised " + exception_text(outcome["raised"])
    else:
        result = f"returned {outcome['returned']!r}"
    print(f"{record['path']} {record['call']} -> {result}")
    for line in record["log"]:
        print(f"    | {line}")
    for report in record["reports"]:
        print(f"    exception handler: {report_text(report)}")
    states = ", ".join(f"{label} {state}" for label, state in record["tasks"].items())
    print(f"    tasks: {states or '(none)'}")
    state = record["state"]
    threads = "" if "threads" not in state else f", threads left {'yes' if state['threads'] else 'no'}"
    print(f"    after: thread's loop {state['thread_loop']}, SIGINT handler {state['sigint']}{threads}")
    sys.stdout.flush()


def show_end(end):
    loops_text = ", ".join(f"{name} {state}" for name, state in end["loops"].items()) or "no loop seen"
    print(f"end: {loops_text}; SIGINT handler {end['sigint']}")
    for line in end["log"]:
        print(f"    | {line}")
    for report in end["reports"]:
        print(f"    exception handler: {report_text(report)}")
    for warning in end["warnings"]:
        print(f"    warning: {warning}")


def run_side(name, as_json):
    global VERBOSE
    VERBOSE = not as_json
    # A process started in the background inherits SIGINT ignored, and asyncio.Runner installs its
    # Ctrl-C handler only over the default one: start from the default, as the suite does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    side, _ = SIDES[name]
    observation = contextvars.Context().run(observe, side)
    if as_json:
        print("OBSERVATION " + json.dumps(observation))
    else:
        show_end(observation["end"])
    sys.stdout.flush()
    gc.enable()


def run_both(timeout, pythons):
    print(f"Python {sys.version.split()[0]} ({sys.executable})")
    traces = {}
    for name, (_, description) in SIDES.items():
        python = pythons.get(name) or sys.executable
        print()
        print(f"=== {name}: {description} ===" + ("" if python == sys.executable else f" (under {python})"))
        command = [python, os.path.abspath(__file__), "--side", name]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
            trace = output + f"(no result after {timeout} s: the side hangs)\n"
            stderr = ""
        else:
            trace = done.stdout
            if done.returncode != 0:
                trace += f"(exit status {done.returncode})\n"
            stderr = done.stderr
        print(trace, end="")
        if stderr.strip():
            print("    stderr:")
            for line in stderr.rstrip().splitlines()[-30:]:
                print(f"    ! {line}")
        traces[name] = trace
    print()
    if traces["reference"] == traces["candidate"]:
        print("=== The two traces are the same. ===")
        return 0
    print("=== The two traces differ: ===")
    diff = difflib.unified_diff(
        traces["reference"].splitlines(), traces["candidate"].splitlines(), "reference", "candidate", lineterm=""
    )
    for line in diff:
        print(line)
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--side", choices=sorted(SIDES), help="run one side in this process")
    parser.add_argument("--json", action="store_true", help="with --side: print the observation as one JSON line")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per side (default 60)")
    for name in ("reference", "candidate"):
        parser.add_argument(
            f"--{name}-python", default=PYTHONS[name], metavar="PATH", help=f"interpreter of the {name} side"
        )
    arguments = parser.parse_args()
    if arguments.side:
        run_side(arguments.side, arguments.json)
    else:
        pythons = {"reference": arguments.reference_python, "candidate": arguments.candidate_python}
        sys.exit(run_both(arguments.timeout, pythons))
'''


if __name__ == "__main__":  # pragma: no cover - a quick look at a rendering
    import argparse

    parser = argparse.ArgumentParser(description="Render a scenario file as a reproducer script.")
    parser.add_argument("scenario", help="a scenario JSON file (the first scenario is used)")
    parser.add_argument("--candidate", default="asyncio")
    parser.add_argument("--candidate-kind", default="runner")
    parser.add_argument("--reference", default="asyncio")
    args = parser.parse_args()
    from conformance.scenario import load_file

    sys.stdout.write(render(load_file(args.scenario)[0], args.candidate, args.candidate_kind, args.reference))
