"""Which spec clauses a scenario exercised, read from the scenario and the reference's run.

The summary of a campaign says which behaviours it reached, so that "nothing
diverged" can be weighed: a run that never left a task pending has said
nothing about K-1. Each rule below names the clause and the evidence for it;
the evidence comes from the reference's observation where the scenario alone
cannot tell (whether a task really was left pending, whether a SIGINT really
reached a running main task).
"""

from __future__ import annotations

from typing import Any, Dict, List, Set

from conformance.scenario import (
    AsyncGen,
    Close,
    Executor,
    GetLoop,
    Raise,
    Run,
    RunObject,
    Scenario,
    SetVarCall,
    SigintCall,
    With,
    iter_calls,
)


def exercised(scenario: Scenario, reference: Dict[str, Any]) -> Set[str]:
    """Clause IDs this scenario exercised, given the reference's observation of it."""
    clauses: Set[str] = set()
    config = scenario.runner
    calls = list(iter_calls(scenario.calls))
    records: List[Dict[str, Any]] = reference.get("calls", [])
    log = [line for record in records for line in record["log"]]
    steps = [step for call in calls if isinstance(call, Run) for task in call.main.tasks for step in task.all_steps()]

    clauses.add("L-4" if config.loop_factory else "L-3")
    if config.debug is not None:
        clauses.add("L-5")
    if config.mode == "run":
        clauses.update({"A-3", "C-2"})
    if config.mode == "with":
        clauses.update({"E-1", "E-3", "C-2"})
    if any(isinstance(c, With) for c in calls):
        clauses.add("E-2")
    if any(isinstance(c, GetLoop) for c in calls):
        clauses.add("G-1")
    if any(isinstance(c, Close) for c in calls):
        clauses.add("C-2")
    if any(isinstance(c, RunObject) for c in calls):
        clauses.add("R-1")
    if any(isinstance(c, SetVarCall) for c in calls):
        clauses.add("L-6")
    if any(isinstance(c, Run) and c.context != "runner" for c in calls):
        clauses.add("R-4")
    if sum(isinstance(c, Run) for c in calls) > 1:
        clauses.update({"R-4", "R-8"})
    if any(isinstance(c, SigintCall) for c in calls):
        clauses.add("S-5")
    for record in records:
        raised = record["outcome"].get("raised", {})
        message = " ".join(str(a) for a in raised.get("args", []))
        if record["call"] == "close" and any(r["call"] in ("close", "exit") for r in records[: records.index(record)]):
            clauses.add("C-1")
        if "Runner is closed" in message:
            clauses.add("L-1")
        if record["call"] == "run" and "outcome" in record and "returned" in record["outcome"]:
            clauses.add("R-9")
        if raised.get("type") == "KeyboardInterrupt" and raised.get("context", {}).get("type") == "CancelledError":
            clauses.add("R-10")
    if reference.get("hints", {}).get("pending_at_main_exit"):
        clauses.update({"K-1", "K-2"})
        if any(" cancelled " in line for line in log):
            clauses.add("K-3")
    if any(r.get("message", "").startswith("unhandled exception during") for rec in records for r in rec["reports"]):
        clauses.add("K-5")
    if any("destroyed but it is pending" in r.get("message", "") for r in reference.get("end", {}).get("reports", [])):
        clauses.add("K-4")
    sigints = sum(line.endswith(" sigint") for line in log)
    if sigints:
        clauses.update({"R-6", "R-11", "S-1"})
    if sigints > 1:
        clauses.add("S-2")
    if sigints and any(" cancelled " in line and ".t0 " in line for line in log):
        clauses.add("S-3")
    if any(isinstance(s, Raise) and s.exc in ("KeyboardInterrupt", "SystemExit") for s in steps):
        clauses.add("R-12")
    if any(isinstance(s, AsyncGen) for s in steps):
        clauses.add("C-2")
    if any(isinstance(s, Executor) for s in steps):
        clauses.add("C-3")
    if any(isinstance(c, Run) for c in calls):
        clauses.add("R-5")
    return clauses
