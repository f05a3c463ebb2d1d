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
it and the limits are built in, not filtered for.

Driver side; uses only the standard library and never the global ``random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from conformance.scenario import (
    CONTEXT_VARS,
    MAX_STRING,
    MODES,
    NON_COROUTINES,
    AsyncGen,
    Await,
    Call,
    Cancel,
    Close,
    Executor,
    GetLoop,
    GetVar,
    GetVarCall,
    OnCancel,
    Raise,
    Return,
    Run,
    RunnerConfig,
    RunObject,
    Scenario,
    SetVar,
    SetVarCall,
    Sigint,
    SigintCall,
    Spawn,
    Step,
    TaskGraph,
    TaskSpec,
    With,
    Yield,
)

KINDS = ("runner", "run", "loop")

#: Step kinds of the model that the fuzzer does not make yet, and why.
NOT_GENERATED: Dict[str, str] = {
    "group": "not in strategies/ yet",
    "timeout": "not in strategies/ yet",
    "uncancel": "not in strategies/ yet",
    "stop_loop": "not in strategies/ yet",
    "nested_run": "not in strategies/ yet",
    "sigint_wait": "needs a helper process per scenario; not in strategies/ yet",
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
    ((_GENERAL, "rare"), 2),
    ((_GENERAL, "return"), 1),
    ((_GENERAL, "var"), 2),
    ((_GENERAL, "cancel"), 1),
    ((_GENERAL, "raise"), 3),
)
_RARE_STEPS = (Raise("KeyboardInterrupt"), Raise("SystemExit"), Sigint())
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
)
_CALLS = tuple(
    _Table(*(pair for pair in _CALL_PAIRS if pair[0] is not _WITH or depth < MAX_WITH_DEPTH))
    for depth in range(MAX_WITH_DEPTH + 1)
)
_OUTLINES = _Table(
    *(
        ((prelude, shape, context), prelude_weight * shape_weight)
        for prelude, prelude_weight in (
            (None, 12),
            (SetVarCall("a", 1), 2),
            (SetVarCall("b", "x"), 1),
            (GetVarCall("a"), 1),
            (GetLoop(), 1),
            (Close(), 1),
        )
        for shape, context, shape_weight in (
            ("single", "runner", 18),
            ("single", "fresh", 3),
            ("single", "copy", 3),
            ("program", None, 16),
            ("interrupted", "runner", 1),
        )
    )
)
_CLOSE_AT_END = _Table((False, 1), (True, 3))
_RUN_MODE_CALLS = _Table((_RUN, 2), (_OBJECT, 1))


def _call(rng: random.Random, depth: int) -> Call:
    call = _CALLS[depth].draw(rng)
    if call is _RUN:
        return Run(task_graph(rng), _CONTEXTS.draw(rng))
    if call is _WITH:
        return With(tuple(_calls(rng, depth + 1)))
    if call is _OBJECT:
        return RunObject(rng.choice(NON_COROUTINES))
    if isinstance(call, tuple):
        var = rng.choice(CONTEXT_VARS)
        return SetVarCall(var, _value(rng)) if rng.random() < 0.5 else GetVarCall(var)
    return call


def _calls(rng: random.Random, depth: int) -> List[Call]:
    size = _length(rng, 1, MAX_PROGRAM_CALLS) if depth == 0 else _length(rng, 0, MAX_WITH_CALLS)
    return [_call(rng, depth) for _ in range(size)]


def _program(rng: random.Random, mode: str) -> Tuple[Call, ...]:
    if mode == "run":
        return (Run(task_graph(rng)) if _RUN_MODE_CALLS.draw(rng) is _RUN else RunObject(rng.choice(NON_COROUTINES)),)
    prelude, shape, context = _OUTLINES.draw(rng)
    calls: List[Call] = [] if prelude is None else [prelude]
    if shape == "program":
        calls += _calls(rng, 0)
    else:
        calls.append(Run(task_graph(rng), context))
    if shape == "interrupted":
        calls += [SigintCall(), Run(task_graph(rng))]
    if mode == "close" and _CLOSE_AT_END.draw(rng):
        calls.append(Close())
    return tuple(calls)


def _configs(kind: str) -> _Table:
    modes = ("run",) if kind == "run" else MODES
    factories = {"run": (False,), "loop": (True,), "runner": (False, True)}[kind]
    return _Table(
        *(
            (RunnerConfig(mode, debug, loop_factory), weight)
            for mode in modes
            for loop_factory in factories
            for debug, weight in ((None, 2), (False, 1), (True, 1))
        )
    )


class Fuzzer:
    """Scenarios a candidate of ``kind`` can run, from a seeded PRNG (see the module docstring)."""

    def __init__(self, kind: str = "runner") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown candidate kind {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind = kind
        self._configs = _configs(kind)

    def scenario(self, rng: random.Random) -> Scenario:
        config = self._configs.draw(rng)
        return Scenario(config, _program(rng, config.mode))

    def scenarios(self, seed: int) -> Iterator[Scenario]:
        """An endless stream of scenarios, the same for the same seed."""
        rng = random.Random(seed)
        while True:
            yield self.scenario(rng)
