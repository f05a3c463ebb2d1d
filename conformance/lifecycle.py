"""The Runner lifecycle as an explicit state model: three states, and what every call does in each.

docs/spec.md describes the Runner clause by clause; this module restates the
part of it that is a state machine, small enough to read at a glance and to
check against any runner: a runner is CREATED (constructed, nothing made yet,
I-2), INITIALIZED (it has a loop and a context, L-*), or CLOSED (for good,
L-1). For each state and each call the table says which outcome the call must
have (return what, or raise what) and which state follows, citing its clauses.

The quirks are part of the model, because they are what "behaves like CPython"
means: ``close()`` on a runner never used does nothing and leaves it usable
(C-1), the inner exit of nested ``with`` blocks closes the runner (E-2), and
``run()`` checks its argument before anything else on 3.11-3.13 (R-1) but only
after initialising on 3.14 (R14-2, R14-3).

``conformance.lifecycle_machine`` drives a candidate through random call
sequences and checks every call against this model and the whole run against
the reference. Of the calls made from inside the runner's running loop it
drives ``run`` (R-2, the scenario step ``nested_run``); the row for ``close``
(C-6) is part of the model but not driven: no scenario step closes the runner
from one of its tasks.

Standard library only, Python 3.9+.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

Version = Tuple[int, int]

CLOSED_MESSAGE = "Runner is closed"
NESTED_RUN_MESSAGE = "Runner.run() cannot be called from a running event loop"

#: The calls of the model. ``run`` hands over a coroutine; ``run_object:<what>``
#: hands over something else (``conformance.scenario.NON_COROUTINES``);
#: ``enter``/``exit`` are the two halves of a ``with`` block; the ``*_inside``
#: calls are made by a task running in the runner's own loop.
RUNNER_CALLS = ("enter", "exit", "run", "get_loop", "close")
INSIDE_LOOP_CALLS = ("run_inside", "close_inside")
NON_COROUTINES = ("int", "none", "lambda", "generator", "awaitable")


class State(enum.Enum):
    CREATED = "created"
    INITIALIZED = "initialized"
    CLOSED = "closed"


@dataclass(frozen=True)
class Outcome:
    """What a call must do: return ``returns``, or raise ``raises`` (with ``message`` where the spec fixes it)."""

    returns: Optional[str] = None
    raises: Optional[str] = None
    message: Optional[str] = None

    def __str__(self) -> str:
        if self.raises is None:
            return f"returns {self.returns}"
        return f"raises {self.raises}" + (f"({self.message!r})" if self.message is not None else "")


#: What a returning call returns: the runner itself, the runner's loop (the
#: same one every time, L-2), the main coroutine's result (R-9), or None.
RUNNER, LOOP, RESULT, NONE = "the runner", "its loop", "the result", "None"
#: The result of ``run_object`` with an awaitable that 3.14 wraps and runs (R14-3).
AWAITABLE_RESULT = "awaitable"

_RETURNS_RUNNER = Outcome(returns=RUNNER)
_RETURNS_LOOP = Outcome(returns=LOOP)
_RETURNS_RESULT = Outcome(returns=RESULT)
_RETURNS_NONE = Outcome(returns=NONE)
_RUNNER_IS_CLOSED = Outcome(raises="RuntimeError", message=CLOSED_MESSAGE)


@dataclass(frozen=True)
class Transition:
    """One row of the model: the outcome a call must have and the state it leaves the runner in."""

    outcome: Outcome
    next_state: State
    clauses: Tuple[str, ...]


_C, _I, _X = State.CREATED, State.INITIALIZED, State.CLOSED

#: The version-independent rows: (state, call) -> transition.
TRANSITIONS: Dict[Tuple[State, str], Transition] = {
    # with-block (E-*): entering initialises and returns the runner; exiting closes.
    (_C, "enter"): Transition(_RETURNS_RUNNER, _I, ("E-1", "L-3", "L-4")),
    (_I, "enter"): Transition(_RETURNS_RUNNER, _I, ("E-1", "E-2", "L-2")),
    (_X, "enter"): Transition(_RUNNER_IS_CLOSED, _X, ("E-1", "L-1")),
    # An exit always follows a successful enter, so CREATED is impossible; it would be close()'s no-op.
    (_C, "exit"): Transition(_RETURNS_NONE, _C, ("E-3", "C-1")),
    (_I, "exit"): Transition(_RETURNS_NONE, _X, ("E-3", "E-2", "C-2")),
    (_X, "exit"): Transition(_RETURNS_NONE, _X, ("E-2", "C-1")),
    # close (C-*): a no-op unless initialised, then closed for good.
    (_C, "close"): Transition(_RETURNS_NONE, _C, ("C-1",)),
    (_I, "close"): Transition(_RETURNS_NONE, _X, ("C-2",)),
    (_X, "close"): Transition(_RETURNS_NONE, _X, ("C-1",)),
    # get_loop (G-1): initialises if needed; the same loop until closed.
    (_C, "get_loop"): Transition(_RETURNS_LOOP, _I, ("G-1", "L-3", "L-4")),
    (_I, "get_loop"): Transition(_RETURNS_LOOP, _I, ("G-1", "L-2")),
    (_X, "get_loop"): Transition(_RUNNER_IS_CLOSED, _X, ("G-1", "L-1")),
    # run with a coroutine: initialises if needed and returns the main task's result.
    (_C, "run"): Transition(_RETURNS_RESULT, _I, ("R-3", "R-9", "L-3", "L-4")),
    (_I, "run"): Transition(_RETURNS_RESULT, _I, ("R-9", "L-2", "R-4")),
    (_X, "run"): Transition(_RUNNER_IS_CLOSED, _X, ("R-3", "L-1")),
    # From a task of the runner's own loop, which is therefore initialised and running.
    (_I, "run_inside"): Transition(Outcome(raises="RuntimeError", message=NESTED_RUN_MESSAGE), _I, ("R-2",)),
    # C-6: the shutdown cancels the calling task, the loop refuses to close, the runner stays initialised.
    (_I, "close_inside"): Transition(Outcome(raises="RuntimeError"), _I, ("C-6",)),
}


def run_object_transition(state: State, obj: str, version: Version) -> Transition:
    """``run(obj)`` with something that is not a coroutine (one of ``NON_COROUTINES``).

    3.11-3.13 (R-1): the argument is checked before anything else, in every
    state: a ValueError that leaves the state alone, except that 3.11 takes a
    plain generator for a coroutine (it then runs like one and returns None).
    3.14 (R14-2, R14-3): the runner initialises first (so a closed runner
    says so), then wraps an awaitable and runs it, and refuses anything else
    with a TypeError, initialised.
    """
    if obj not in NON_COROUTINES:
        raise ValueError(f"unknown non-coroutine {obj!r}")
    if tuple(version) < (3, 14):
        if obj == "generator" and tuple(version) == (3, 11):
            ran = TRANSITIONS[(state, "run")]
            return Transition(_RETURNS_NONE if ran.outcome.raises is None else ran.outcome, ran.next_state, ("R-1",))
        return Transition(Outcome(raises="ValueError"), state, ("R-1",))
    if state is State.CLOSED:
        return Transition(_RUNNER_IS_CLOSED, state, ("R14-2", "L-1"))
    if obj == "awaitable":
        return Transition(Outcome(returns=AWAITABLE_RESULT), State.INITIALIZED, ("R14-2", "R14-3"))
    return Transition(Outcome(raises="TypeError"), State.INITIALIZED, ("R14-2", "R14-3"))


def transition(state: State, call: str, version: Version) -> Transition:
    """The row for ``call`` (a name of ``RUNNER_CALLS`` or ``INSIDE_LOOP_CALLS``, or ``run_object:<what>``)."""
    if call.startswith("run_object:"):
        return run_object_transition(state, call.split(":", 1)[1], version)
    try:
        return TRANSITIONS[(state, call)]
    except KeyError:
        raise ValueError(f"no transition for {call!r} in state {state.value}") from None


def loop_is_current(state: State, loop_factory: bool) -> bool:
    """Whether the thread's current event loop is the runner's own loop in ``state``.

    Only a runner without a loop factory makes its loop current (L-3; with a
    factory that is the factory's business, L-4), from initialisation until
    ``close()`` resets it to None (C-2).
    """
    return state is State.INITIALIZED and not loop_factory


class LifecycleModel:
    """One runner's state, advanced call by call."""

    def __init__(self, version: Version, loop_factory: bool = False) -> None:
        self.version = version
        self.loop_factory = loop_factory
        self.state = State.CREATED

    def apply(self, call: str) -> Transition:
        """The transition ``call`` takes from the current state, which it then enters."""
        step = transition(self.state, call, self.version)
        self.state = step.next_state
        return step

    def loop_is_current(self) -> bool:
        return loop_is_current(self.state, self.loop_factory)
