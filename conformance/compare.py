"""The comparison: is a candidate's observation one the reference allows?

Two observations of the same scenario are compared field by field, in the
order the program made its calls, and every difference is named: a category
(what kind of behaviour differs) and the spec clause it breaks. The first
difference in program order is the *primary* one; it is the signature that
groups findings, because what follows it is usually its consequence.

Nothing is loosened except what the spec leaves open:

* the order in which leftover tasks are cancelled (and so how their cleanup
  interleaves): not handled here but by re-running the reference in the
  candidate's order (``conformance.differential``), so it is exact;
* the order of exception-handler reports, warnings and garbage-collection
  reports, which are multisets (the interpreter sorts them);
* the text of messages of exceptions the implementation raises (not the
  scenario), unless ``strict_messages`` is set: types are always compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Set

from conformance.scenario import (
    Cancel,
    Group,
    NestedRun,
    Raise,
    Scenario,
    Sigint,
    SigintCall,
    SigintWait,
    StopLoop,
    Timeout,
    iter_calls,
    walk_steps,
)

CATEGORIES = (
    "result",
    "exception",
    "leftover tasks",
    "cleanup",
    "shutdown order",
    "SIGINT",
    "context",
    "event-loop state",
    "warnings",
    "HANG",
    "CRASH",
)

#: Exceptions whose arguments are behaviour even when the runtime raised them:
#: a cancellation's message (K-2, S-1) and the exit code of SystemExit.
_ARGS_ALWAYS_COMPARED = {"CancelledError", "KeyboardInterrupt", "SystemExit"}
_CLOSING_CALLS = {"close", "exit"}
_RUN_ENDED = re.compile(r"r\d+\.t0 exit |\S+ exit raised (KeyboardInterrupt|SystemExit)\(")
_EXC_IN_LINE = re.compile(
    r"\b([A-Z]\w*(?:Error|Exception|Warning|Interrupt|Exit))\(('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)"
)


@dataclass(frozen=True)
class Difference:
    """One way the candidate's observation differs from the reference's."""

    category: str
    clause: str
    where: str
    reference: Any
    candidate: Any

    def signature(self) -> str:
        return f"{self.clause} {self.category}"

    def to_json(self) -> Dict[str, Any]:
        return {
            "category": self.category,
            "clause": self.clause,
            "where": self.where,
            "reference": self.reference,
            "candidate": self.candidate,
        }


def compare(
    scenario: Scenario, reference: Dict[str, Any], candidate: Dict[str, Any], strict_messages: bool = False
) -> List[Difference]:
    """Every difference between the two observations, primary (earliest) first."""
    return _Comparison(scenario, strict_messages).run(reference, candidate)


def outcome_difference(outcome: Dict[str, Any]) -> Difference:
    """A HANG or CRASH of the candidate, as a difference of its own category."""
    kind = outcome["outcome"]
    detail = {k: v for k, v in outcome.items() if k not in ("outcome", "stderr_tail")}
    return Difference(kind, "-", "$", "completed", detail)


class _Comparison:
    def __init__(self, scenario: Scenario, strict_messages: bool) -> None:
        self.scenario = scenario
        self.strict = strict_messages
        self.scenario_args: Set[str] = set()
        self.has_sigint = False
        #: A SIGINT inside a ``timeout`` block or a ``TaskGroup`` (its body or a child): S-4.
        self.sigint_in_deadline_or_group = False
        self.stops_loop = False
        self.nested_runs: Set[str] = set()
        for call in iter_calls(scenario.calls):
            if isinstance(call, SigintCall):
                self.has_sigint = True
            tasks = getattr(getattr(call, "main", None), "tasks", ())
            group_children = {c for t in tasks for s in t.all_steps() if _is_taskgroup(s) for c in s.tasks}
            for index, task in enumerate(tasks):
                for step in task.all_steps():
                    if isinstance(step, Raise) and step.arg is not None:
                        self.scenario_args.add(step.arg)
                    if isinstance(step, Cancel) and step.msg is not None:
                        self.scenario_args.add(step.msg)
                    if isinstance(step, (Sigint, SigintWait)):
                        self.has_sigint = True
                        self.sigint_in_deadline_or_group |= index in group_children
                    if isinstance(step, (Timeout, Group)) and any(
                        isinstance(inner, (Sigint, SigintWait)) for inner in walk_steps(step.steps)
                    ):
                        self.sigint_in_deadline_or_group = True
                    self.stops_loop = self.stops_loop or isinstance(step, StopLoop)
                    if isinstance(step, NestedRun):
                        self.nested_runs.add(step.how)
        self.loop_factory = scenario.runner.loop_factory
        self.mode = scenario.runner.mode
        self.sigint_handler = scenario.runner.sigint_handler
        self.thread = scenario.runner.thread

    def run(self, reference: Dict[str, Any], candidate: Dict[str, Any]) -> List[Difference]:
        found: List[Difference] = []
        ref_calls, cand_calls = reference["calls"], candidate["calls"]
        for index in range(max(len(ref_calls), len(cand_calls))):
            ref = ref_calls[index] if index < len(ref_calls) else None
            cand = cand_calls[index] if index < len(cand_calls) else None
            if ref is None or cand is None or ref["path"] != cand["path"]:
                where = (ref or cand)["path"]
                found.append(
                    Difference("exception", "E-1", where, _call_name(ref), _call_name(cand))
                )  # the with-blocks entered differently; the enter outcome says why
                break
            found.extend(self._call(ref, cand))
        found.extend(self._end(reference["end"], candidate["end"]))
        return found

    # ------------------------------------------------------------ calls

    def _call(self, ref: Dict[str, Any], cand: Dict[str, Any]) -> Iterable[Difference]:
        """Differences of one call, earliest in time first.

        The log is the call's timeline, so a log difference comes before the
        summaries taken when the call ended (outcome, task states, process
        state): those are usually its consequences.
        """
        name, where = ref["call"], ref["path"]
        ref_log, cand_log = self._log(ref["log"]), self._log(cand["log"])
        if ref_log != cand_log:
            yield self._log_difference(name, f"{where}.log", ref_log, cand_log, ref["tasks"], cand["tasks"])
        ref_outcome, cand_outcome = self._outcome(ref["outcome"]), self._outcome(cand["outcome"])
        if ref_outcome != cand_outcome:
            yield self._outcome_difference(name, where, ref_outcome, cand_outcome)
        if ref["tasks"] != cand["tasks"]:
            yield self._tasks_difference(name, where, ref["tasks"], cand["tasks"])
        for key in ("thread_loop", "sigint", "threads"):
            if ref["state"].get(key) != cand["state"].get(key):
                yield self._state_difference(
                    name, f"{where}.state.{key}", key, ref["state"].get(key), cand["state"].get(key)
                )
        ref_reports, cand_reports = self._reports(ref["reports"]), self._reports(cand["reports"])
        if ref_reports != cand_reports:
            category = "cleanup" if name in _CLOSING_CALLS or self.mode == "run" else "warnings"
            yield Difference(category, "K-5", f"{where}.reports", ref_reports, cand_reports)

    def _outcome(self, outcome: Dict[str, Any]) -> Dict[str, Any]:
        if "raised" not in outcome:
            return outcome
        return {"raised": self._exception(outcome["raised"])}

    def _exception(self, summary: Dict[str, Any]) -> Dict[str, Any]:
        """Drop implementation-written message text unless strict."""
        if self.strict:
            return summary
        out = dict(summary)
        if "origin" not in out and out["type"] not in _ARGS_ALWAYS_COMPARED:
            out["args"] = ["…"] if out["args"] else []
        for link in ("cause", "context"):
            if link in out:
                out[link] = self._exception(out[link])
        if "exceptions" in out:
            out["exceptions"] = [self._exception(e) for e in out["exceptions"]]
        return out

    def _log(self, lines: List[str]) -> List[str]:
        if self.strict:
            return lines
        return [_EXC_IN_LINE.sub(self._message_in_line, line) for line in lines]

    def _message_in_line(self, match: re.Match[str]) -> str:
        name, text = match.group(1), match.group(2)[1:-1]
        if name in _ARGS_ALWAYS_COMPARED or text in self.scenario_args:
            return match.group(0)
        return f"{name}(…)"

    def _reports(self, reports: List[Dict[str, Any]]) -> List[Any]:
        out = []
        for report in reports:
            exc = report.get("exception")
            out.append({**report, "exception": None if exc is None else self._log([exc])[0]})
        return sorted(out, key=repr)

    # --------------------------------------------------- classification

    def _outcome_difference(self, name: str, where: str, ref: Dict, cand: Dict) -> Difference:
        where = f"{where}.outcome"
        ref_type = ref.get("raised", {}).get("type")
        cand_type = cand.get("raised", {}).get("type")
        types = (ref_type, cand_type)
        if self.sigint_in_deadline_or_group and name == "run" and "KeyboardInterrupt" in types:
            return Difference("SIGINT", "S-4", where, ref, cand)
        if "KeyboardInterrupt" in types and self.has_sigint:
            clause = "S-5" if name in _CLOSING_CALLS or name == "sigint" else "R-10"
            return Difference("SIGINT", clause, where, ref, cand)
        if self.stops_loop and name == "run" and "RuntimeError" in types:
            return Difference("exception", "R-13", where, ref, cand)
        clause = {
            "run": "R-12",
            "run_object": "R-1",
            "get_loop": "G-1",
            "close": "C-4",
            "enter": "E-1",
            "exit": "E-3",
            "set_var": "L-6",
            "get_var": "R-4",
            "sigint": "S-5",
        }.get(name, "R-12")
        if name == "run" and ref_type is None and cand_type is None:
            return Difference("result", "R-9", where, ref, cand)
        if name in ("get_var", "set_var"):
            return Difference("context", clause, where, ref, cand)
        if name == "run" and "RuntimeError" in (ref_type, cand_type):
            message = str((ref.get("raised") or cand.get("raised") or {}).get("args"))
            clause = "R-2" if "running event loop" in message else "L-1" if "closed" in message else clause
        return Difference("exception", clause, where, ref, cand)

    def _tasks_difference(self, name: str, where: str, ref: Dict[str, str], cand: Dict[str, str]) -> Difference:
        labels = [label for label in sorted(set(ref) | set(cand)) if ref.get(label) != cand.get(label)]
        detail_ref = {label: ref.get(label) for label in labels}
        detail_cand = {label: cand.get(label) for label in labels}
        where = f"{where}.tasks"
        if name in _CLOSING_CALLS or self.mode == "run":
            return Difference("leftover tasks", _leftover_clause(labels[0], ref, cand), where, detail_ref, detail_cand)
        return Difference("leftover tasks", "R-12", where, detail_ref, detail_cand)

    def _state_difference(self, name: str, where: str, key: str, ref: Any, cand: Any) -> Difference:
        if key == "sigint":
            if self.thread == "other":
                return Difference("SIGINT", "I-4", where, ref, cand)
            if self.sigint_handler != "default":
                return Difference("SIGINT", "R-6", where, ref, cand)  # a handler it must leave alone
            return Difference("SIGINT", "R-11" if name in ("run", "exit") else "R-6", where, ref, cand)
        if key == "threads":
            return Difference("cleanup", "C-3", where, ref, cand)
        if name in _CLOSING_CALLS or self.mode == "run":
            clause = "C-2"
        else:
            clause = "L-4" if self.loop_factory else "L-3"
        return Difference("event-loop state", clause, where, ref, cand)

    def _log_difference(
        self,
        name: str,
        where: str,
        ref: List[str],
        cand: List[str],
        ref_tasks: Dict[str, str],
        cand_tasks: Dict[str, str],
    ) -> Difference:
        index = next((i for i, (a, b) in enumerate(zip(ref, cand)) if a != b), min(len(ref), len(cand)))
        ref_line = ref[index] if index < len(ref) else None
        cand_line = cand[index] if index < len(cand) else None
        lines = " ".join(line for line in (ref_line, cand_line) if line)
        detail_ref, detail_cand = ref[index : index + 3], cand[index : index + 3]
        where = f"{where}[{index}]"
        closing = name in _CLOSING_CALLS or (self.mode == "run" and _run_has_ended(ref, index))
        if " debug=" in lines:
            return Difference("event-loop state", "L-5", where, detail_ref, detail_cand)
        if "sigint custom handler" in lines:
            return Difference("SIGINT", "R-6", where, detail_ref, detail_cand)  # the runner replaced it, or not
        if " nested_run " in lines:
            return Difference(
                "exception", "R-2" if " nested_run runner" in lines else "A-2", where, detail_ref, detail_cand
            )
        if self.sigint_in_deadline_or_group and re.search(r" (timeout\(|taskgroup )", lines):
            return Difference("SIGINT", "S-4", where, detail_ref, detail_cand)
        if closing:
            # Tasks that received a cancellation on one side only were not
            # cancelled by the other (K-1), whatever they did next.
            labels = {line.split(" ", 1)[0] for line in (ref_line, cand_line) if line}
            one_side_cancelled = len(labels) == 1 and (" cancelled " in (ref_line or "")) != (
                " cancelled " in (cand_line or "")
            )
            state_says = any(_leftover_clause(label, ref_tasks, cand_tasks) == "K-1" for label in labels)
            if _cancelled_labels(ref[index:]) != _cancelled_labels(cand[index:]) or one_side_cancelled or state_says:
                return Difference("leftover tasks", "K-1", where, detail_ref, detail_cand)
        if re.search(r"\br\d+\.g\d+ ", lines):
            in_both = ref_line is not None and cand_line is not None and (ref_line in cand) and (cand_line in ref)
            return Difference("shutdown order" if in_both else "cleanup", "C-2", where, detail_ref, detail_cand)
        if " get " in lines or " set " in lines:
            return Difference("context", "R-4", where, detail_ref, detail_cand)
        if closing:
            label = (ref_line or cand_line or "").split(" ", 1)[0]
            clause = _leftover_clause(label, ref_tasks, cand_tasks)
            if clause != "K-2" or " cancelled " in lines:
                return Difference("leftover tasks", clause, where, detail_ref, detail_cand)
            return Difference("cleanup", "K-3", where, detail_ref, detail_cand)
        if self.has_sigint:
            return Difference("SIGINT", "S-1", where, detail_ref, detail_cand)
        return Difference("result", "R-9", where, detail_ref, detail_cand)

    # -------------------------------------------------------------- end

    def _end(self, ref: Dict[str, Any], cand: Dict[str, Any]) -> Iterable[Difference]:
        if ref["loops"] != cand["loops"]:
            yield Difference("event-loop state", "C-2", "$.end.loops", ref["loops"], cand["loops"])
        ref_log, cand_log = self._log(ref["log"]), self._log(cand["log"])
        if ref_log != cand_log:
            yield Difference("cleanup", "C-2", "$.end.log", ref_log, cand_log)
        ref_reports, cand_reports = self._reports(ref["reports"]), self._reports(cand["reports"])
        if ref_reports != cand_reports:
            messages = " ".join(r["message"] for r in ref_reports + cand_reports)
            clause = "K-4" if "destroyed" in messages else "R-12"
            yield Difference("warnings", clause, "$.end.reports", ref_reports, cand_reports)
        ref_warnings, cand_warnings = self._log(ref["warnings"]), self._log(cand["warnings"])
        if ref_warnings != cand_warnings:
            yield Difference("warnings", "R-2", "$.end.warnings", ref_warnings, cand_warnings)


def _is_taskgroup(step: Any) -> bool:
    return isinstance(step, Group) and step.how == "taskgroup"


def _leftover_clause(label: str, ref: Dict[str, str], cand: Dict[str, str]) -> str:
    """Which leftover-task clause a difference about ``label`` at close breaks.

    K-1 when one side cancelled the task and the other did not; K-3 when the
    candidate asked for the cancellation but never let the task act on it
    (no draining); K-2 otherwise (how the cancellation was delivered).
    """
    ref_state, cand_state = ref.get(label, ""), cand.get(label, "")
    if cand_state == "pending (cancel requested)":
        return "K-3"
    if (ref_state == "cancelled") != (cand_state == "cancelled"):
        return "K-1"
    return "K-2"


def _cancelled_labels(log: List[str]) -> Set[str]:
    return {line.split(" ", 1)[0] for line in log if " cancelled " in line}


def _run_has_ended(log: List[str], index: int) -> bool:
    """In mode ``run`` one call holds the run and the close: is ``index`` in the close part?

    The run ends when the main task exits, or when a KeyboardInterrupt or
    SystemExit escapes a task (it stops the loop at once, R-12).
    """
    return any(_RUN_ENDED.match(line) for line in log[:index])


def _call_name(record: Optional[Dict[str, Any]]) -> Optional[str]:
    return None if record is None else f"{record['call']} at {record['path']}"
