"""Fuzz mode: scenarios from a seeded PRNG, a hundred times cheaper to make than Hypothesis's.

Hypothesis spends about 2 ms drawing one scenario from ``strategies``, more
than the two workers spend running it, so a Hypothesis-driven campaign is
bound by generation. ``Fuzzer`` makes scenarios with the same shape and the
same proportions as ``strategies/scenarios.py`` (the tables below mirror its
``_pick`` tables; keep the two in step) from one ``random.Random(seed)``, in
a few tens of microseconds: the same seed gives the same scenarios, in the
same order. It has no shrinker of its own: a divergence it finds is reduced
by ``conformance.shrink`` like any other.

Every scenario it makes is valid (``conformance.scenario.from_json`` accepts
its JSON, tests/test_fuzz.py checks): the spawn tree, the awaits that follow
it and the limits are built in, not filtered for. Programs get the same foci
as in strategies/ (``conformance.focus``), except a SIGINT inside a
``timeout`` block, a step kind the fuzzer does not make.

Driver side; uses only the standard library and never the global ``random``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from conformance.focus import Focus, Leftover, focused, starting_with, with_main, without_executors
from conformance.scenario import (
    CONTEXT_VARS,
    MAX_STRING,
    NON_COROUTINES,
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
    InterruptMain,
    NestedRun,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    SetSigintHandler,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    Spawn,
    Step,
    StopLoop,
    TaskGraph,
    TaskSpec,
    With,
    Yield,
)

KINDS = ("runner", "run", "loop")

#: Step kinds of the model that the fuzzer does not make yet, and why.
NOT_GENERATED: Dict[str, str] = {
    "group": "not mirrored from strategies/ yet",
    "timeout": "not mirrored from strategies/ yet",
    "uncancel": "not mirrored from strategies/ yet",
    "sigint_wait": "needs a helper process per scenario; not mirrored from strategies/ yet",
}

# The same limits as strategies/scenarios.py.
MAX_GRAPH_TASKS = 6
MAX_BODY_STEPS = 6
MAX_HANDLER_STEPS = 4
MAX_PROGRAM_CALLS = 6
MAX_WITH_CALLS = 4
MAX_WITH_DEPTH = 2

T = TypeVar("T")


class _Table:
    """A weighted choice: ``(value, weight)`` pairs, drawn with one ``random()`` call."""

    def __init__(self, *pairs: Tuple[Any, int]) -> None:
        self.values = [value for value, _ in pairs]
        self.cumulative: List[int] = []
        total = 0
        for _, weight in pairs:
            total += weight
            self.cumulative.append(total)

    def draw(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


def _length(rng: random.Random, min_size: int, max_size: int) -> int:
    """A list length with Hypothesis's default average (``min + 5``, at most the midpoint of the range)."""
    average = min(max(min_size * 2, min_size + 5), (min_size + max_size) / 2) - min_size
    keep_going = average / (average + 1)
    size = min_size
    while size < max_size and rng.random() < keep_going:
        size += 1
    return size


# ----------------------------------------------------------------- leaves

#: Printable characters beyond ASCII, for the odd string: accents, CJK, an emoji, a combining mark.
_WIDE = "éßøΩж中文日本語😀\u0301€"
_ASCII = "".join(chr(c) for c in range(32, 127))
_ANY_INT = object()
_ANY_TEXT = object()
_VALUES = _Table((None, 6), (0, 1), (1, 2), (2, 1), (-1, 1), ("x", 1), ("done", 1), (_ANY_INT, 1), (_ANY_TEXT, 1))
_MESSAGES = _Table((None, 6), ("stop", 2), ("", 1), ("x", 1), (_ANY_TEXT, 2))
_EXCEPTIONS = _Table(
    ("ValueError", 6), ("RuntimeError", 5), ("CancelledError", 5), ("KeyboardInterrupt", 1), ("SystemExit", 1)
)
_CONTEXTS = _Table(("runner", 6), ("fresh", 1), ("copy", 1))
#: As ``strategies.scenarios._OBJECT_WEIGHTS``.
_OBJECT_WEIGHTS = {"int": 2, "none": 2, "lambda": 2, "generator": 2, "awaitable": 3, "awaited": 3}
_OBJECTS = _Table(*((name, _OBJECT_WEIGHTS[name]) for name in NON_COROUTINES))


def _text(rng: random.Random) -> str:
    size = _length(rng, 0, MAX_STRING)
    alphabet = _WIDE if rng.random() < 0.2 else _ASCII
    return "".join(rng.choice(alphabet) for _ in range(size))


def _integer(rng: random.Random) -> int:
    if rng.random() < 0.5:
        return rng.randint(-10, 10)
    if rng.random() < 0.2:
        return rng.choice((-(2**31), 2**31 - 1))
    return rng.randint(-(2**31), 2**31 - 1)


def _value(rng: random.Random) -> Any:
    value = _VALUES.draw(rng)
    if value is _ANY_INT:
        return _integer(rng)
    if value is _ANY_TEXT:
        return _text(rng)
    return value


def _message(rng: random.Random) -> Optional[str]:
    message = _MESSAGES.draw(rng)
    return _text(rng) if message is _ANY_TEXT else message


# ------------------------------------------------------------------ steps


@dataclass(frozen=True)
class _CancelTemplate:
    """A ``cancel`` step whose target is chosen once the spawn tree is known (as in strategies/)."""

    target: str
    index: int = 0
    msg: Optional[str] = None


_GENERAL = object()
_STEPS = _Table(
    (Yield(), 40),
    (Return(None), 2),
    (Return(1), 1),
    (GetVar("a"), 3),
    (SetVar("a", 1), 3),
    (_CancelTemplate("child"), 3),
    (_CancelTemplate("child", 1), 1),
    (_CancelTemplate("child", 0, "stop"), 2),
    (_CancelTemplate("main"), 1),
    (_CancelTemplate("main", 0, "stop"), 1),
    (Raise("ValueError"), 4),
    (Raise("RuntimeError", "boom"), 3),
    (Raise("CancelledError"), 3),
    (Executor(True), 3),
    (Executor(False), 3),
    (AsyncGen(), 5),
    (InterruptMain(), 1),
    (CloseRunner(), 1),
    (SetSigintHandler(), 1),
    ((_GENERAL, "rare"), 2),
    ((_GENERAL, "return"), 1),
    ((_GENERAL, "var"), 2),
    ((_GENERAL, "cancel"), 1),
    ((_GENERAL, "raise"), 3),
)
_RARE_STEPS = (Raise("KeyboardInterrupt"), Raise("SystemExit"), Sigint(), StopLoop())
_CANCEL_TARGETS = _Table(("child", 6), ("main", 2), ("self", 1), ("any", 1))


def _step(rng: random.Random) -> Any:
    """A step, or a cancel template to resolve once the tree is known."""
    step = _STEPS.draw(rng)
    if not isinstance(step, tuple):
        return step
    kind = step[1]
    if kind == "rare":
        return rng.choice(_RARE_STEPS)
    if kind == "return":
        return Return(_value(rng))
    if kind == "var":
        var = rng.choice(CONTEXT_VARS)
        return SetVar(var, _value(rng)) if rng.random() < 0.5 else GetVar(var)
    if kind == "cancel":
        return _CancelTemplate(_CANCEL_TARGETS.draw(rng), rng.randrange(MAX_GRAPH_TASKS), _message(rng))
    return Raise(_EXCEPTIONS.draw(rng), _message(rng))


def _steps(rng: random.Random, max_size: int) -> List[Any]:
    return [_step(rng) for _ in range(_length(rng, 0, max_size))]


# ------------------------------------------------------------ task graphs

_TASK_COUNTS = _Table((1, 6), (2, 6), (3, 4), (4, 2), (5, 1), (6, 1))
_HANDLERS = _Table(
    *(
        ((action, has_finally), action_weight * finally_weight)
        for action, action_weight in (("propagate", 6), ("swallow", 2), ("cleanup", 2))
        for has_finally, finally_weight in ((False, 3), (True, 1))
    )
)
_CHILD_PLANS = _Table(
    *(
        ((where, how, place), where_weight * how_weight * place_weight)
        for where, where_weight in (("steps", 8), ("finally", 2), ("cleanup", 4))
        for how, how_weight in (("none", 2), ("await", 4), ("catch", 1))
        for place, place_weight in ((("after", 6), ("anywhere", 1)) if how != "none" else (("after", 7),))
    )
)
_AWAIT_LISTS = _Table(("steps", 6), ("finally", 1), ("cleanup", 1))
_POSITIONS = MAX_BODY_STEPS + 2 * MAX_GRAPH_TASKS


@dataclass
class _TaskDraft:
    lists: Dict[str, List[Any]]
    action: str = "propagate"
    value: Any = None
    parent: int = 0
    plan: Tuple[str, str, str] = ("steps", "none", "after")
    spawn_at: int = 0
    await_at: int = 0
    await_list: str = "steps"


def _draft(rng: random.Random, k: int) -> _TaskDraft:
    body = _steps(rng, MAX_BODY_STEPS)
    action, has_finally = _HANDLERS.draw(rng)
    value = _value(rng) if action == "swallow" else None
    cleanup = _steps(rng, MAX_HANDLER_STEPS) if action == "cleanup" else []
    finally_steps = _steps(rng, MAX_HANDLER_STEPS) if has_finally else []
    draft = _TaskDraft({"steps": body, "cleanup": cleanup, "finally": finally_steps}, action, value)
    if k:
        # As in strategies/: of the 2k - 1 equally likely draws, the smaller k make the main task the parent.
        draft.parent = max(0, rng.randint(0, 2 * k - 2) - (k - 1))
        draft.plan = _CHILD_PLANS.draw(rng)
        draft.spawn_at = rng.randint(0, _POSITIONS)
        if draft.plan[1] != "none":
            draft.await_at = rng.randint(0, _POSITIONS)
            if draft.plan[2] == "anywhere":
                draft.await_list = _AWAIT_LISTS.draw(rng)
    return draft


def _resolve_cancel(template: _CancelTemplate, me: int, children: Sequence[int], n_tasks: int) -> Cancel:
    target = template.target
    if target == "child" and not children:
        others = [task for task in range(n_tasks) if task != me] or [me]
        task = others[template.index % len(others)]
    elif target == "child":
        task = children[template.index % len(children)]
    elif target == "main":
        task = 0
    elif target == "self":
        task = me
    else:
        task = template.index % n_tasks
    return Cancel(task, template.msg)


def task_graph(rng: random.Random) -> TaskGraph:
    """A valid task graph of 1 to 6 tasks, assembled the way strategies/ assembles one."""
    n = _TASK_COUNTS.draw(rng)
    drafts = [_draft(rng, k) for k in range(n)]
    children: List[List[int]] = [[] for _ in range(n)]
    for k in range(1, n):
        children[drafts[k].parent].append(k)

    def holder(k: int, name: str) -> List[Any]:
        parent = drafts[drafts[k].parent]
        return parent.lists["steps" if name == "cleanup" and parent.action != "cleanup" else name]

    for k in reversed(range(1, n)):
        steps = holder(k, drafts[k].plan[0])
        steps.insert(drafts[k].spawn_at % (len(steps) + 1), Spawn(k))
    for k in range(1, n):
        where, how, place = drafts[k].plan
        if how == "none":
            continue
        if place == "after":
            steps = holder(k, where)
            room = len(steps) - steps.index(Spawn(k))
        else:
            steps = holder(k, drafts[k].await_list)
            room = len(steps) + 1
        steps.insert(len(steps) - drafts[k].await_at % room, Await(k, how == "catch"))

    def finish(steps: List[Any], me: int) -> Tuple[Step, ...]:
        return tuple(_resolve_cancel(s, me, children[me], n) if isinstance(s, _CancelTemplate) else s for s in steps)

    return TaskGraph(
        tuple(
            TaskSpec(
                finish(d.lists["steps"], i),
                OnCancel(d.action, d.value, finish(d.lists["cleanup"], i)),
                finish(d.lists["finally"], i),
            )
            for i, d in enumerate(drafts)
        )
    )


# ------------------------------------------------------------------ calls

_RUN, _WITH, _OBJECT = object(), object(), object()
_CALL_PAIRS = (
    (_RUN, 8),
    (GetLoop(), 3),
    (Close(), 3),
    (SetVarCall("a", 1), 1),
    (GetVarCall("a"), 1),
    ((_GENERAL, "var"), 1),
    (_OBJECT, 4),
    (_WITH, 3),
    (SigintCall(), 1),
    (ConstructPositional(), 2),
    (CloseLoop(), 2),
)
_CALLS = tuple(
    _Table(*(pair for pair in _CALL_PAIRS if pair[0] is not _WITH or depth < MAX_WITH_DEPTH))
    for depth in range(MAX_WITH_DEPTH + 1)
)
#: As in strategies/: a call made first, if any, then the program's shape.
_PRELUDES = _Table(
    (None, 10),
    (SetVarCall("a", 1), 2),
    (SetVarCall("b", "x"), 1),
    (GetVarCall("a"), 1),
    (GetLoop(), 2),
    (Close(), 2),
    (ConstructPositional(), 3),
    (CloseLoop(), 3),
    (RunObject("awaited"), 2),
    (RunObject("awaitable"), 2),
)
_SHAPES = _Table(
    (("single", "runner"), 18),
    (("single", "fresh"), 3),
    (("single", "copy"), 3),
    (("program", None), 16),
    (("twice", "runner"), 4),
    (("object", None), 6),
    (("interrupted", "runner"), 4),
    (("reentered", "runner"), 10),
)
_CLOSE_AT_END = _Table((False, 1), (True, 2), ("again", 1))
_NESTED = object()
_RUN_MODE_CALLS = _Table((_RUN, 2), (_OBJECT, 3), (_NESTED, 2))

# ------------------------------------------------------------------ foci

#: As in strategies/ (which also raise the SIGINT in a ``timeout`` block sometimes).
_FOCUS_SIGINTS = _Table((Sigint(), 1), (InterruptMain(), 1))
_FOCUS_NESTED = _Table((NestedRun("runner"), 2), (NestedRun("run"), 1))
_FOCUS_CONTEXTS = _Table(("runner", 2), ("fresh", 1), ("copy", 1))
_LEFTOVER_ENDINGS = _Table(
    (None, 1),
    (Raise("ValueError", "cleanup"), 4),
    (Raise("KeyboardInterrupt"), 2),
    (Raise("SystemExit"), 1),
    (Sigint(), 4),
    (StopLoop(), 3),
    (Return("swallowed"), 4),
)


def _focus(rng: random.Random, sigint_likely: bool) -> Focus:
    """Each feature on or off independently, as ``strategies.scenarios._foci`` draws them."""
    sigint = None
    if sigint_likely:
        sigint = (_FOCUS_SIGINTS.draw(rng), None, None, False, rng.random() < 0.5)
    elif rng.random() < 0.4:
        again = _FOCUS_SIGINTS.draw(rng) if rng.random() < 0.5 else None
        sigint = (_FOCUS_SIGINTS.draw(rng), None, again, rng.random() < 1 / 3, rng.random() < 0.5)
    leftovers: Tuple[Leftover, ...] = ()
    if rng.random() < 0.6:
        for _ in range(1 + (rng.random() < 0.5)):
            ending = _LEFTOVER_ENDINGS.draw(rng)
            leftovers += ((rng.randint(3, 6), rng.random() < 0.5, rng.random() < 0.5, ending),)
    context = rng.random() < 1 / 3
    nested = _FOCUS_NESTED.draw(rng) if rng.random() < 1 / 3 else None
    return Focus(sigint, leftovers, context, nested, rng.random() < 1 / 3, rng.random() < 1 / 3)


def _call(rng: random.Random, depth: int) -> Call:
    call = _CALLS[depth].draw(rng)
    if call is _RUN:
        return Run(task_graph(rng), _CONTEXTS.draw(rng))
    if call is _WITH:
        return With(tuple(_calls(rng, depth + 1)))
    if call is _OBJECT:
        return RunObject(_OBJECTS.draw(rng))
    if isinstance(call, tuple):
        var = rng.choice(CONTEXT_VARS)
        return SetVarCall(var, _value(rng)) if rng.random() < 0.5 else GetVarCall(var)
    return call


def _calls(rng: random.Random, depth: int) -> List[Call]:
    size = _length(rng, 1, MAX_PROGRAM_CALLS) if depth == 0 else _length(rng, 0, MAX_WITH_CALLS)
    return [_call(rng, depth) for _ in range(size)]


def _program(rng: random.Random, mode: str, legacy: bool) -> Tuple[Call, ...]:
    """A program, made as ``strategies.scenarios._programs`` makes one."""
    focus = _focus(rng, legacy)
    spawned_at_close = False

    def focused_graph() -> TaskGraph:
        nonlocal spawned_at_close
        graph, spawns = focused(task_graph(rng), focus)
        spawned_at_close = spawned_at_close or spawns
        return graph

    if mode == "run":
        kind = _RUN_MODE_CALLS.draw(rng)
        if kind is _OBJECT:
            return (RunObject(_OBJECTS.draw(rng)),)
        graph = focused_graph()
        if kind is _NESTED:
            graph = with_main(graph, starting_with(graph.tasks[0], (NestedRun("run"),)))
        return _fit_run_mode((Run(graph),), spawned_at_close)
    first, (shape, context) = _PRELUDES.draw(rng), _SHAPES.draw(rng)
    calls: List[Call] = [] if first is None else [first]
    if focus.two_runs:
        shape, context = "twice", context or "runner"
    if focus.context and not any(isinstance(call, SetVarCall) and call.var == "a" for call in calls):
        calls.insert(0, SetVarCall("a", 1))

    def run(run_context: str = "runner") -> Run:
        graph = focused_graph()
        return Run(graph, _FOCUS_CONTEXTS.draw(rng) if focus.context else run_context)

    if shape == "program":
        calls += _calls(rng, 0)
    elif shape == "object":
        calls.append(RunObject(_OBJECTS.draw(rng)))
    elif shape == "reentered":
        calls += [GetLoop(), With((GetLoop(),)), run(context)]
    else:
        calls.append(run(context))
    if shape == "twice":
        calls.append(run())
    if shape == "interrupted":
        calls += [SigintCall(), run()]
    end = _CLOSE_AT_END.draw(rng) if mode == "close" else False
    if end or (mode == "close" and focus.leftovers):
        calls.append(Close())
    if end == "again":
        calls.append(Run())
    return without_executors(tuple(calls)) if spawned_at_close else tuple(calls)


def _fit_run_mode(calls: Tuple[Call, ...], spawned_at_close: bool) -> Tuple[Call, ...]:
    """Mode ``run`` has no runner object: its tasks run nested through the run function and close nothing."""
    if spawned_at_close:
        calls = without_executors(calls)
    (run,) = calls
    assert isinstance(run, Run)

    def fix(steps: Tuple[Step, ...]) -> Tuple[Step, ...]:
        return tuple(
            Yield() if isinstance(s, CloseRunner) else NestedRun("run") if isinstance(s, NestedRun) else s
            for s in steps
        )

    tasks = tuple(
        TaskSpec(
            fix(t.steps), OnCancel(t.on_cancel.action, t.on_cancel.value, fix(t.on_cancel.steps)), fix(t.finally_steps)
        )
        for t in run.main.tasks
    )
    return (Run(TaskGraph(tasks)),)


#: How often a program asks for debug mode: not set, off, on. On is the rarest, because asyncio's
#: debug mode takes a traceback at every callback and task: a scenario costs three times as much.
_DEBUG_WEIGHTS = ((None, 5), (False, 4), (True, 1))
#: As in strategies/: task factories, and how a runner's first loop fails in mode "close".
_TASK_FACTORIES = _Table(
    ("none", 10), ("custom", 2), ("legacy", 4), *((("eager", 2),) if hasattr(asyncio, "eager_task_factory") else ())
)
_LOOP_FAILURES = _Table(("never", 2), ("create", 1), ("set_debug", 2))


def _configs(kind: str) -> _Table:
    modes = (("run", 1),) if kind == "run" else (("with", 4), ("close", 4), ("run", 3))
    factories = {"run": (False,), "loop": (True,), "runner": (False, True)}[kind]
    return _Table(
        *(
            (RunnerConfig(mode, debug, loop_factory), mode_weight * weight)
            for mode, mode_weight in modes
            for loop_factory in factories
            for debug, weight in _DEBUG_WEIGHTS
        )
    )


def _config(rng: random.Random, configs: _Table, kind: str) -> RunnerConfig:
    """A runner configuration, completed as ``strategies.scenarios._configs`` completes one."""
    config = configs.draw(rng)
    task_factory = _TASK_FACTORIES.draw(rng)
    loop_fails = _LOOP_FAILURES.draw(rng) if config.mode == "close" else "never"
    debug, loop_factory = config.debug, config.loop_factory
    if loop_fails == "set_debug":
        if kind == "loop":
            loop_fails = "create"
        else:
            debug, loop_factory = (False if debug is None else debug), False
    return RunnerConfig(config.mode, debug, loop_factory, "default", "main", loop_fails, task_factory)


class Fuzzer:
    """Scenarios a candidate of ``kind`` can run, from a seeded PRNG (see the module docstring)."""

    def __init__(self, kind: str = "runner") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown candidate kind {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind = kind
        self._configs = _configs(kind)

    def scenario(self, rng: random.Random) -> Scenario:
        config = _config(rng, self._configs, self.kind)
        calls = _program(rng, config.mode, config.task_factory == "legacy")
        if config.mode == "close" and config.loop_fails != "never":
            calls = (GetLoop(),) + calls  # as in strategies/: the failure shows, the rest retries (L-7)
        return Scenario(config, calls)

    def scenarios(self, seed: int) -> Iterator[Scenario]:
        """An endless stream of scenarios, the same for the same seed."""
        rng = random.Random(seed)
        while True:
            yield self.scenario(rng)
