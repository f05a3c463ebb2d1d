"""Which spec clauses a scenario exercised, read from the reference's observation of it.

A campaign's summary says which behaviours it reached, so that "nothing
diverged" can be weighed: a run that never left a task pending has said
nothing about K-1. ``conformance coverage`` counts the same evidence per
clause of docs/spec.md. A rule credits a clause only when the observation
shows the behaviour happening, not when the scenario merely asks for it: a
``sigint`` step counts for S-1 only if it arrived while the main task was
pending and the main task was then cancelled; a task counts as left over
(K-1) only if it was still pending when a close began and that close ended
it.

Each rule names its clause in a comment. Clauses that no differential scenario
can exercise are listed, with the reason, in ``conformance.clauses``; a clause
without a rule here shows up as "not exercised" there, never silently.

What the log cannot separate: in mode ``run`` one record holds both the run
and the close (``asyncio.run`` is one call). There the close is taken to begin
where the run must have ended (the main task's exit, or a
``KeyboardInterrupt`` / ``SystemExit`` escaping another task), and a leftover
counts as cancelled by the close only if nothing before explains its
cancellation (a ``cancel`` step or SIGINT aimed at it or at an ancestor).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from conformance.scenario import (
    LOOP_FAILURE_ORIGIN,
    Call,
    Group,
    InterruptMain,
    Run,
    RunObject,
    Scenario,
    SetVarCall,
    Sigint,
    SigintWait,
    TaskGraph,
    Timeout,
    With,
    walk_steps,
)

Record = Dict[str, Any]

#: Messages the runner itself writes (docs/spec.md quotes them verbatim).
CLOSED = "Runner is closed"
NESTED_RUN = "Runner.run() cannot be called from a running event loop"
NESTED_ASYNCIO_RUN = "asyncio.run() cannot be called from a running event loop"
NOT_A_COROUTINE = "a coroutine was expected"
NOT_AWAITABLE = "An asyncio.Future, a coroutine or an awaitable is required"
NO_LOOP_FACTORY = "unexpected keyword argument 'loop_factory'"
SHUTDOWN_REPORT = "unhandled exception during asyncio.run() shutdown"
#: R-13: the reference runs on asyncio's own loop, whose message this is.
STOPPED = "Event loop stopped before Future completed"
#: R-15, C-4: asyncio's loop refusing to work once closed.
LOOP_CLOSED = "Event loop is closed"
#: R-14: asyncio's Task running a coroutine that has already been awaited.
REUSED_COROUTINE = "already awaited"

#: What the program's own SIGINT handler logs (``sigint_handler: custom``).
CUSTOM_HANDLER = "sigint custom handler"
#: How the interpreter records each ``sigint_handler`` the program can start with.
_HANDLER_STATES = {"default": "default", "ignored": "SIG_IGN", "custom": "custom"}
#: A cancellation that reached a task without a message (K-2, S-1).
_PLAIN_CANCEL = "cancelled CancelledError()"
_MAIN_START = re.compile(r"^(r\d+\.t0) start (loop\d+) debug=(True|False)$")
_LINE = re.compile(r"^(\S+) (.*)$")
_CANCEL_STEP = re.compile(r"^cancel (\S+) -> True$")
_SET = re.compile(r"^set (\w+)=")
_GET = re.compile(r"^get (\w+) -> ")
#: A ``group`` step starting: ``gather [r0.t1, r0.t2]``, ``wait_for(expired) [r0.t1]``.
_GROUP_START = re.compile(r"^(\S+) \[((?:r\d+\.t\d+(?:, )?)*)\]$")
_ESCAPE = re.compile(r"^exit raised (KeyboardInterrupt|SystemExit)\(")
_AWAITING = re.compile(r"^(yield|await |executor \S+ awaited)")
#: What a task factory logs as it makes a task (``task_factory`` custom, eager, legacy).
_FACTORY_LINE = re.compile(r"^(\S+) task_factory context=(True|False) sigint=(\S+)$")
#: The log events of steps that raise a SIGINT (``sigint``, ``interrupt_main``) or wait for one.
_SIGINT_EVENTS = ("sigint", "sigint_wait", "interrupt_main")
_CLOSING_CALLS = ("close", "exit")
_RUN_CALLS = ("run", "run_object")


def exercised(scenario: Scenario, reference: Dict[str, Any], version: Optional[Sequence[int]] = None) -> Set[str]:
    """Clause IDs this scenario exercised, given the reference's observation of it.

    ``version`` is the CPython release the reference imitated (``None``: its
    default for this interpreter); the R14 clauses hold for 3.14 only, R-1 for
    3.11-3.13.
    """
    if version is None:
        from reference import default_version

        version = default_version()
    program = _Program(scenario, reference, (int(version[0]), int(version[1])))
    clauses: Set[str] = set()
    clauses |= _construction_and_initialisation(program)
    clauses |= _with_close_and_get_loop(program)
    clauses |= _runs(program)
    clauses |= _leftovers(program)
    clauses |= _asyncio_run(program)
    return clauses


# ------------------------------------------------------------ the program


@dataclass
class _Close:
    """One close that shut a loop down: its record, and what the log says it did."""

    record: Record
    lines: List[str]
    #: Leftovers this close cancelled: the index in ``lines`` of the line where
    #: each saw it, or -1 for one cancelled before it could run again.
    cancelled: Dict[str, int] = field(default_factory=dict)


class _Program:
    """The observation, indexed: each record's call, the runner's phase before it, its main task."""

    def __init__(self, scenario: Scenario, observation: Dict[str, Any], version: Tuple[int, int]) -> None:
        self.config = scenario.runner
        self.version = version
        self.records: List[Record] = observation.get("calls") or []
        self.calls = _calls_by_path(scenario)
        self.phases = self._phases()
        self.closes = [close for close in map(self._close, range(len(self.records))) if close is not None]

    def call(self, record: Record) -> Optional[Call]:
        return self.calls.get(record.get("path", ""))

    def _phases(self) -> List[str]:
        """The runner's phase ("fresh", "ready", "closed") before each record (L-1, L-2, C-1)."""
        phases, phase = [], "fresh"
        for record in self.records:
            phases.append(phase)
            if record["call"] in _CLOSING_CALLS:
                phase = "closed" if phase == "ready" else phase
            elif phase == "fresh" and _initialised(record):
                phase = "ready"
        return phases

    def _close(self, index: int) -> Optional[_Close]:
        """The close made by record ``index``, if it shut a loop down."""
        record = self.records[index]
        log: List[str] = record["log"]
        if self.config.mode == "run":
            start = _run_end(log)
            if start is None:
                return None
            leftovers = _pending_at(log, start)
            close = _Close(record, log[start + 1 :])
            close.cancelled = _cancelled_by_close(log, start + 1, leftovers)
            return close
        if record["call"] not in _CLOSING_CALLS or self.phases[index] != "ready":
            return None
        before = self.records[index - 1]["tasks"] if index else {}
        close = _Close(record, log)
        # Not "pending (cancel requested)": what such a task sees is not the close's cancellation alone.
        for label in [label for label, state in before.items() if state == "pending"]:
            line = _first(log, label, _PLAIN_CANCEL)
            if line is not None:
                close.cancelled[label] = line
            elif record["tasks"].get(label) == "cancelled":
                close.cancelled[label] = -1  # cancelled before it ever ran again: nothing in the log
        return close

    def run_records(self) -> List[Tuple[int, Record, List[str]]]:
        """Each run call's record and the part of its log that belongs to the run (not to a close)."""
        out = []
        for index, record in enumerate(self.records):
            if record["call"] not in _RUN_CALLS:
                continue
            log = record["log"]
            if self.config.mode == "run":
                end = _run_end(log)
                log = log if end is None else log[: end + 1]
            out.append((index, record, log))
        return out


def _calls_by_path(scenario: Scenario) -> Dict[str, Call]:
    """Each call of the scenario under the path the interpreter records for it."""
    calls: Dict[str, Call] = {}

    def walk(items: Tuple[Call, ...], path: str) -> None:
        for position, call in enumerate(items):
            here = f"{path}[{position}]"
            calls[here] = call
            if isinstance(call, With):
                walk(call.calls, f"{here}.calls")

    walk(scenario.calls, "$.calls")
    return calls


def _initialised(record: Record) -> bool:
    """Whether this call initialised the runner (L-*): what it returned or raised says so.

    A call that got the failure of ``loop_fails`` did not (L-7).
    """
    if record["call"] in ("enter", "get_loop", "close_loop"):
        return "returned" in record["outcome"]
    if record["call"] not in _RUN_CALLS:
        return False
    raised = record["outcome"].get("raised")
    if raised is None:
        return True
    if raised.get("origin") == LOOP_FAILURE_ORIGIN:
        return False
    return not any(text in _message(raised) for text in (CLOSED, NOT_A_COROUTINE))


def _message(raised: Dict[str, Any]) -> str:
    return " ".join(str(arg) for arg in raised.get("args", []))


@functools.lru_cache(maxsize=4096)
def _split(line: str) -> Tuple[str, str]:
    """A log line's label and event; cached, since the clause checks ask about the same lines many times."""
    match = _LINE.match(line)
    return (match.group(1), match.group(2)) if match else ("", line)


def _first(log: List[str], label: str, event: str, start: int = 0) -> Optional[int]:
    for index in range(start, len(log)):
        if log[index] == f"{label} {event}":
            return index
    return None


def _main(log: List[str]) -> Optional[Tuple[str, str, str]]:
    """(label, loop, debug) of the main task a run started, from its first line."""
    for line in log:
        match = _MAIN_START.match(line)
        if match:
            return match.group(1), match.group(2), match.group(3)
    return None


def _run_end(log: List[str]) -> Optional[int]:
    """Mode ``run``: the last line that certainly belongs to the run, not to the close.

    The run ends when the main task exits, or at once when a
    ``KeyboardInterrupt`` / ``SystemExit`` leaves any task (R-12).
    """
    main = _main(log)
    if main is None:
        return None
    for index, line in enumerate(log):
        label, event = _split(line)
        if (label == main[0] and event.startswith("exit ")) or _ESCAPE.match(event):
            return index
    return None


def _spawned(event: str) -> Tuple[str, List[str]]:
    """``(how, children)`` if the event spawns tasks: a ``spawn`` step, or a ``group`` step starting."""
    if event.startswith("spawn "):
        return "spawn", [event[6:]]
    match = _GROUP_START.match(event)
    if match:
        return match.group(1), [label for label in match.group(2).split(", ") if label]
    return "", []


def _pending_at(log: List[str], index: int) -> Set[str]:
    """Tasks started or spawned by line ``index`` that had not exited."""
    pending: Set[str] = set()
    for line in log[: index + 1]:
        label, event = _split(line)
        if event.startswith("start"):
            pending.add(label)
        elif event.startswith("exit "):
            pending.discard(label)
        else:
            pending.update(_spawned(event)[1])
    return pending


def _cancelled_by_close(log: List[str], start: int, leftovers: Set[str]) -> Dict[str, int]:
    """Mode ``run``: leftovers whose message-less cancellation nothing but the close explains.

    A ``cancel`` step or a SIGINT (which cancels the main task) aimed at the
    task or at one of its ancestors explains a cancellation too, and so does a
    ``TaskGroup`` or ``wait_for`` that the task was made by (they cancel their
    children): such tasks do not count. A cancelled parent passes its
    cancellation on to a child it awaits (an ``await`` step, ``gather``), not
    to one it only spawned. Only what happened before the close began counts.
    """
    parent: Dict[str, str] = {}
    explained: Set[str] = set()
    main = _main(log)
    for line in log[:start]:
        label, event = _split(line)
        how, children = _spawned(event)
        for child in children:
            if how.startswith("gather"):
                parent[child] = label
            if how == "taskgroup" or how.startswith("wait_for("):
                explained.add(child)
        if event.startswith("await "):
            parent[event.split(" ")[1]] = label
        match = _CANCEL_STEP.match(event)
        if match:
            explained.add(match.group(1))
        if _is_sigint(line) and main is not None:
            explained.add(main[0])
    cancelled: Dict[str, int] = {}
    for label in leftovers:
        line = _first(log, label, _PLAIN_CANCEL, start)
        ancestors, node = {label}, label
        while node in parent:
            node = parent[node]
            ancestors.add(node)
        if line is not None and not ancestors & explained:
            cancelled[label] = line - start
    return cancelled


# ------------------------------------------------------------------ rules


def _construction_and_initialisation(program: _Program) -> Set[str]:
    clauses: Set[str] = set()
    config = program.config
    seen_loops: Set[str] = set()
    for index, record in enumerate(program.records):
        phase = program.phases[index]
        state = record.get("state", {})
        loop = _loop_of(record)
        # I-2: calls made on a runner that was constructed but never used see no
        # loop made current and the SIGINT handler the program started with.
        if config.mode == "close" and phase == "fresh" and not _initialised(record):
            if state.get("thread_loop") == "none" and state.get("sigint") == _HANDLER_STATES[config.sigint_handler]:
                clauses.add("I-2")
        # L-2: a later call on the open runner finds the loop an earlier call made.
        if phase == "ready" and loop is not None and loop in seen_loops:
            clauses.add("L-2")
        if loop is not None:
            seen_loops.add(loop)
            # L-3: without a factory, the runner's loop is the thread's current loop.
            if not config.loop_factory and state.get("thread_loop") == loop:
                clauses.add("L-3")
            # L-4: with a factory, the runner leaves the thread's current loop alone.
            if config.loop_factory and state.get("thread_loop") == "none":
                clauses.add("L-4")
        # L-1: a closed runner refuses with its own message.
        raised = record.get("outcome", {}).get("raised")
        if raised is not None and phase == "closed" and CLOSED in _message(raised):
            clauses.add("L-1")
        # I-1: the runner's class refused an argument given positionally.
        if record["call"] == "construct_positional" and raised is not None and raised["type"] == "TypeError":
            clauses.add("I-1")
        # L-7: the first loop failed, the runner stayed fresh, and a later call initialised it.
        if raised is not None and raised.get("origin") == LOOP_FAILURE_ORIGIN and phase == "fresh":
            if any(_initialised(later) for later in program.records[index + 1 :]):
                clauses.add("L-7")
    for _, _record, log in program.run_records():
        main = _main(log)
        # L-5: the main task sees the debug flag the runner was given.
        if main is not None and config.debug is not None and main[2] == str(config.debug):
            clauses.add("L-5")
    # L-6: a context variable set in the driver, then read by a task of a run in
    # the runner's context (visible if set before the first use, not after).
    set_vars: Set[str] = set()
    for record in program.records:
        call = program.call(record)
        if isinstance(call, SetVarCall):
            set_vars.add(call.var)
        elif isinstance(call, Run) and call.context == "runner" and set_vars & _vars(record["log"], _GET):
            clauses.add("L-6")
    return clauses


def _loop_of(record: Record) -> Optional[str]:
    """The runner's loop this call showed: the one ``get_loop`` returned or the main task ran in."""
    if record["call"] == "get_loop":
        value = record["outcome"].get("returned")
        return value if isinstance(value, str) and value.startswith("loop") else None
    main = _main(record["log"]) if record["call"] in _RUN_CALLS else None
    return main[1] if main else None


def _vars(log: List[str], pattern: re.Pattern[str]) -> Set[str]:
    found = set()
    for line in log:
        match = pattern.match(_split(line)[1])
        if match:
            found.add(match.group(1))
    return found


def _with_close_and_get_loop(program: _Program) -> Set[str]:
    clauses: Set[str] = set()
    for index, record in enumerate(program.records):
        phase, call = program.phases[index], record["call"]
        returned = "returned" in record["outcome"]
        if call == "enter":
            clauses.add("E-1")  # entered: returned the runner, or refused when closed
            if phase == "ready" and returned:
                clauses.add("E-2")  # entered again while open
        if call == "exit" and phase == "ready":
            clauses.add("E-3")  # the exit closed the runner
        # C-1: close on a never-used runner, or again on a closed one, is a no-op.
        if call in _CLOSING_CALLS and phase in ("fresh", "closed") and not record["log"] and returned:
            clauses.add("C-1")
        if call == "get_loop":
            clauses.add("G-1")
        if _closed_from_inside(record, program.config.loop_factory):
            clauses.add("C-6")
    executor_at = min(
        (i for i, r in enumerate(program.records) for line in r["log"] if _split(line)[1].startswith("executor ")),
        default=None,
    )
    for close in program.closes:
        at = program.records.index(close.record)
        agens = any(_split(line)[0].split(".")[-1].startswith("g") for line in close.lines)
        # C-2: the close's shutdown steps ran: leftovers cancelled, async generators finalized.
        if close.cancelled or agens:
            clauses.add("C-2")
        # C-3: the close shut down a default executor that a task had used.
        if executor_at is not None and executor_at <= at and "threads" in close.record.get("state", {}):
            clauses.add("C-3")
        # C-4: a shutdown step raised; close() raised it after closing (in mode
        # run only what a leftover raised while being cancelled counts).
        raised = close.record["outcome"].get("raised")
        if raised is not None and (program.config.mode != "run" or _raised_by_leftover(close, raised)):
            clauses.add("C-4")
        # a leftover stopped the loop while being cancelled: the close failed with the loop's message.
        if raised is not None and raised["type"] == "RuntimeError" and STOPPED in _message(raised):
            clauses.add("R-13")
    return clauses


def _closed_from_inside(record: Record, loop_factory: bool) -> bool:
    """C-6: a task closed the runner from inside its running loop, and the loop refused.

    What shows that the close did not refuse at once (as a guard would): its
    leftover cancellation reached a task (a plain cancellation after it, or the
    calling task ended cancelled), or it reset the thread's current loop that
    the runner had set (no loop factory).
    """
    log = record["log"]
    for index, line in enumerate(log):
        label, event = _split(line)
        if not event.startswith("close_runner raised RuntimeError("):
            continue
        reached = any(_split(later)[1] == _PLAIN_CANCEL for later in log[index + 1 :])
        if reached or record["tasks"].get(label) == "cancelled":
            return True
        if not loop_factory and record["state"].get("thread_loop") == "none":
            return True
    return False


def _raised_by_leftover(close: _Close, raised: Dict[str, Any]) -> bool:
    """Whether ``raised`` came from a leftover after the close cancelled it (K-6, S-5)."""
    label = ".".join(str(raised.get("origin", "")).split(".")[:2])
    if label in close.cancelled:
        return True
    return raised.get("type") == "KeyboardInterrupt" and any(
        _first(close.lines, leftover, event, max(line, 0)) is not None
        for leftover, line in close.cancelled.items()
        for event in ("sigint", "interrupt_main")
    )


def _runs(program: _Program) -> Set[str]:
    clauses: Set[str] = set()
    written_by_runs: Set[str] = set()
    handler_reached = False
    for index, record, log in program.run_records():
        outcome = record["outcome"]
        raised = outcome.get("raised")
        call = program.call(record)
        main = _main(log)
        phase = program.phases[index]
        # an already-awaited coroutine was run, and its task failed for it.
        if isinstance(call, RunObject) and call.object == "awaited" and raised is not None:
            if raised["type"] == "RuntimeError" and REUSED_COROUTINE in _message(raised):
                clauses.add("R-14")
        # the user closed the runner's loop; run() got the loop's own refusal, not "Runner is closed".
        if (
            raised is not None
            and phase == "ready"
            and LOOP_CLOSED in _message(raised)
            and _user_closed_loop(program, index)
        ):
            clauses.add("R-15")
        if record["call"] == "run_object" and program.version < (3, 14):
            clauses.add("R-1")  # the type check came first: rejected, or a 3.11 generator let through
        refused = raised is not None and NOT_AWAITABLE in _message(raised)
        if record["call"] == "run_object" and refused and program.version >= (3, 14) and phase != "closed":
            clauses.add("R14-2")  # rejected only after the running-loop check and initialisation
        if record["call"] == "run_object" and program.version >= (3, 14) and _handled_as_314_does(outcome):
            clauses.add("R14-3")
        if raised is not None and phase == "closed" and CLOSED in _message(raised):
            clauses.add("R-3")
            if record["call"] == "run_object" and program.version >= (3, 14):
                clauses.add("R14-2")  # "Runner is closed" wins over a bad argument
        if main is None:
            if "returned" in outcome and record["call"] == "run_object":
                clauses.add("R-9")
            continue
        clauses.add("R-5")  # the main task was created in the runner's loop and ran
        if "returned" in outcome:
            clauses.add("R-9")
        # a task read a variable in the run's own context, or one that an
        # earlier run's main task wrote into the shared runner context.
        read = _vars(log, _GET)
        if read and isinstance(call, Run) and (call.context != "runner" or read & written_by_runs):
            clauses.add("R-4")
        if isinstance(call, Run) and call.context == "runner":
            written_by_runs |= _vars([line for line in log if line.startswith(main[0] + " ")], _SET)
        # the run raised the very exception object a task raised during it.
        if raised is not None and "origin" in raised:
            label = ".".join(str(raised["origin"]).split(".")[:2])
            if any(line.startswith(f"{label} raise {raised['type']}(") for line in log):
                clauses.add("R-12")
        # user code stopped the loop while the main task was pending (the loop's own message).
        if raised is not None and raised["type"] == "RuntimeError" and STOPPED in _message(raised):
            clauses.add("R-13")
        if program.config.thread != "main":
            clauses.add("I-4")  # a run made from another thread
            continue
        if program.config.sigint_handler != "default":
            # the program's own handler (it logs) or SIG_IGN was left alone, so a
            # SIGINT during the run reached it and did not cancel the main task.
            first = next((i for i, line in enumerate(log) if _is_sigint(line)), None)
            reached_own = program.config.sigint_handler == "ignored" or CUSTOM_HANDLER in log[first or 0 :]
            if first is not None and reached_own and _first(log, main[0], _PLAIN_CANCEL, first) is None:
                clauses.add("R-6")
            continue
        # a handler that user code installed over the runner's during the run was left in place.
        if record["state"].get("sigint") == "custom" and any(_split(line)[1] == "set_sigint_handler" for line in log):
            clauses.add("R-11")
        reached = _sigint_clauses(main[0], log, record)
        if _handler_installed_after_main_task(main[0], log, "S-1" in reached):
            clauses.add("R-7")
        if handler_reached and "S-1" in reached:
            clauses.add("R-8")  # a fresh "first SIGINT" in a later run of the same runner
        handler_reached = handler_reached or "R-11" in reached
        # S-4: the SIGINT came inside a timeout() or TaskGroup block, and still meant KeyboardInterrupt.
        if "S-1" in reached and raised is not None and raised["type"] == "KeyboardInterrupt":
            if isinstance(call, Run) and _sigint_inside_block(call.main):
                clauses.add("S-4")
        clauses |= reached
    # a run started from inside the running loop was refused with the runner's own message.
    lines = [line for record in program.records for line in record["log"]]
    if any(NESTED_RUN in line for line in lines):
        clauses.add("R-2")
    if any(NESTED_ASYNCIO_RUN in line for line in lines):
        clauses.add("A-2")
    if program.version >= (3, 14) and clauses & {f"R-{n}" for n in range(4, 17)}:
        clauses.add("R14-4")
    return clauses


def _handled_as_314_does(outcome: Dict[str, Any]) -> bool:
    """R14-3: ``run`` wrapped an awaitable and ran it, refused a non-awaitable with TypeError, or
    ran a coroutine as it is (an already-awaited one fails in its task)."""
    raised = outcome.get("raised")
    if raised is None:
        return True
    return NOT_AWAITABLE in _message(raised) or REUSED_COROUTINE in _message(raised)


def _user_closed_loop(program: _Program, index: int) -> bool:
    """Whether a ``close_loop`` call before record ``index`` closed the runner's loop."""
    return any(record["call"] == "close_loop" and "returned" in record["outcome"] for record in program.records[:index])


def _handler_installed_after_main_task(main: str, log: List[str], sigint_handled: bool) -> bool:
    """R-7: the task factory saw the default SIGINT handler as it made the main task, and the
    runner's own handler was installed afterwards (a later task saw it, or it handled a SIGINT)."""
    made_at = next((i for i, line in enumerate(log) if line.startswith(f"{main} task_factory ")), None)
    if made_at is None or not log[made_at].endswith(" sigint=default"):
        return False
    later = [_FACTORY_LINE.match(line) for line in log[made_at + 1 :]]
    return sigint_handled or any(match is not None and match.group(3) == "other" for match in later)


def _sigint_clauses(main: str, log: List[str], record: Record) -> Set[str]:
    """S-1..S-3, S-6, R-6, R-10, R-11: what the SIGINTs raised during one run did."""
    clauses: Set[str] = set()
    sigints = [i for i, line in enumerate(log) if _is_sigint(line)]
    if not sigints:
        return clauses
    exit_at = next((i for i, line in enumerate(log) if line.startswith(f"{main} exit ")), len(log))
    raised = record["outcome"].get("raised") or {}
    main_state = record["tasks"].get(main, "")
    first = sigints[0]
    if first < exit_at:
        saw_it = _first(log, main, _PLAIN_CANCEL, first)
        if saw_it is not None or main_state == "cancelled":
            clauses |= {"S-1", "R-6", "R-11"}  # the runner's handler cancelled the pending main task
            if _split(log[first])[1] == "interrupt_main":
                clauses.add("S-6")  # _thread.interrupt_main() ran the same handler
            if saw_it is not None:
                clauses.add("S-3")  # the main task's own handling decides what it means
            if main_state == "cancelled" and raised.get("type") in ("KeyboardInterrupt", "CancelledError"):
                clauses.add("R-10")
    for at in sigints:
        if at == first and first < exit_at:
            continue
        label = _split(log[at])[0]
        later = [line for line in log[at + 1 :] if line.startswith(label + " ")]
        if any("KeyboardInterrupt()" in line for line in later) or (
            raised.get("type") == "KeyboardInterrupt" and "origin" not in raised
        ):
            clauses |= {"S-2", "R-6", "R-11"}  # the handler raised KeyboardInterrupt where the code was
            if _split(log[at])[1] == "interrupt_main":
                clauses.add("S-6")
    return clauses


def _is_sigint(line: str) -> bool:
    """A SIGINT raised by a task (``sigint``, ``interrupt_main``), or a ``sigint_wait`` step waiting for one."""
    return _split(line)[1] in _SIGINT_EVENTS


def _sigint_inside_block(graph: TaskGraph) -> bool:
    """Whether the main task raises or waits for SIGINT inside a ``timeout`` block or a ``TaskGroup``.

    Inside means in the block's own steps or, for a ``TaskGroup``, in one of
    the children it runs.
    """
    for step in walk_steps(graph.tasks[0].all_steps()):
        if isinstance(step, Timeout) or (isinstance(step, Group) and step.how == "taskgroup"):
            inner = list(walk_steps(step.steps))
            if isinstance(step, Group):
                inner += [s for child in step.tasks for s in graph.tasks[child].all_steps()]
            if any(isinstance(s, (Sigint, SigintWait, InterruptMain)) for s in inner):
                return True
    return False


def _leftovers(program: _Program) -> Set[str]:
    clauses: Set[str] = set()
    for close in program.closes:
        if close.cancelled:
            clauses.add("K-1")  # the close found tasks still pending and ended them
        for label, at in close.cancelled.items():
            if at < 0:
                continue
            clauses.add("K-2")  # a leftover saw a cancellation without a message
            after = [_split(line)[1] for line in close.lines[at + 1 :] if line.startswith(label + " ")]
            # K-3: its cleanup awaited, so the close ran the loop until it was done.
            if any(_AWAITING.match(event) for event in after) and not close.record["tasks"].get(
                label, "pending"
            ).startswith("pending"):
                clauses.add("K-3")
            # K-4: a task spawned during the shutdown is left pending, never cancelled.
            for event in after:
                if any(close.record["tasks"].get(child, "").startswith("pending") for child in _spawned(event)[1]):
                    clauses.add("K-4")
        if any(report.get("message") == SHUTDOWN_REPORT for report in close.record.get("reports", [])):
            clauses.add("K-5")
        raised = close.record["outcome"].get("raised")
        if raised and raised.get("type") in ("KeyboardInterrupt", "SystemExit") and _raised_by_leftover(close, raised):
            clauses.add("K-6")
            if raised["type"] == "KeyboardInterrupt" and "origin" not in raised:
                clauses.add("S-5")  # a SIGINT in a leftover's cleanup: no handler during close
    for record in program.records:
        if record["call"] == "sigint" and record["outcome"].get("raised", {}).get("type") == "KeyboardInterrupt":
            clauses.add("S-5")  # between calls there is no runner handler: Python's own KeyboardInterrupt
    return clauses


def _asyncio_run(program: _Program) -> Set[str]:
    clauses: Set[str] = set()
    config = program.config
    if config.mode != "run" or not program.records:
        return clauses
    record = program.records[0]
    clauses.add("A-3")  # with Runner(...) as runner: runner.run(main), outcome and all
    raised = record["outcome"].get("raised") or {}
    main = _main(record["log"])
    # 3.11 refuses loop_factory; from 3.12 it reaches the runner, as debug always does.
    if config.loop_factory and NO_LOOP_FACTORY in _message(raised):
        clauses.add("A-1")
    elif main is not None and config.loop_factory and program.version >= (3, 12):
        clauses.add("A-1")
    elif main is not None and config.debug is not None and main[2] == str(config.debug):
        clauses.add("A-1")
    if main is not None and not config.loop_factory and record["state"].get("thread_loop") == "none":
        clauses.add("A-4")  # the loop it made current is no longer the thread's
    if program.version >= (3, 14) and record["call"] == "run_object" and _handled_as_314_does(record["outcome"]):
        clauses.add("R14-5")
    return clauses
