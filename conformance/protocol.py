"""What a worker may declare it implements, and what a scenario needs of it.

The driver talks to every worker over one line-based JSON protocol (its
messages are described in docs/protocol.md, their JSON Schemas are in
``schemas/``). Our own worker (``conformance.worker``) runs any scenario; a
worker written in another language (``--candidate exec:COMMAND``) usually
implements a subset, and says which in its handshake::

    {"ready": {...}, "protocol": 1, "implements": ["mode:run", "call:run", "op:yield", ...]}

A scenario it does not implement is then reported as unsupported, not run
and not counted as a divergence. The vocabulary is small and explicit:

``mode:M``
    the runner mode of ``runner.mode`` (``with``, ``close``, ``run``);
``runner:F=V``
    a runner option set to something other than its default
    (``runner:debug=true``, ``runner:loop_factory=true``);
``call:C``
    a call of the program (``run``, ``close``, ``with``, ...), and
    ``call:run.context=X`` for a ``run`` with a context other than the runner's;
``op:O``
    a step kind anywhere in a task (``yield``, ``spawn``, ``raise``, ...);
``task:on_cancel=A`` / ``task:finally``
    a task that handles its cancellation other than by propagating it, or
    has ``finally`` steps.

A worker may instead (or also) list what it ``lacks``: our worker does, for
a Python candidate that the harness cannot drive with some feature (see
``Target.lacks``). A worker that declares neither implements everything. This module is on the
execution side: standard library only, Python 3.9+.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable, List, Optional, Set

from conformance.scenario import Run, RunnerConfig, Scenario, iter_calls, walk_steps

#: The protocol version a worker states in its handshake; a driver refuses a worker of another one.
PROTOCOL_VERSION = 1


def features(scenario: Scenario) -> Set[str]:
    """Every feature (see the module docstring) that running ``scenario`` needs."""
    needed = {f"mode:{scenario.runner.mode}"}
    for field in dataclasses.fields(RunnerConfig):
        value = getattr(scenario.runner, field.name)
        if field.name != "mode" and value != field.default:
            needed.add(f"runner:{field.name}={json.dumps(value)}")
    for call in iter_calls(scenario.calls):
        needed.add(f"call:{type(call).call}")
        if isinstance(call, Run):
            if call.context != "runner":
                needed.add(f"call:run.context={call.context}")
            for task in call.main.tasks:
                if task.on_cancel.action != "propagate":
                    needed.add(f"task:on_cancel={task.on_cancel.action}")
                if task.finally_steps:
                    needed.add("task:finally")
                needed.update(f"op:{type(step).op}" for step in walk_steps(task.steps))
                needed.update(f"op:{type(step).op}" for step in walk_steps(task.on_cancel.steps))
                needed.update(f"op:{type(step).op}" for step in walk_steps(task.finally_steps))
    return needed


def missing(implemented: Optional[Iterable[str]], scenario: Scenario, lacks: Iterable[str] = ()) -> List[str]:
    """The features ``scenario`` needs that a worker does not have.

    ``implemented``: what the worker declared it implements (None: everything);
    ``lacks``: what it declared it does not.
    """
    lacks = set(lacks)
    if implemented is None and not lacks:
        return []  # a worker that has everything: no need to list what the scenario uses
    needed = features(scenario)
    absent = needed & lacks
    if implemented is not None:
        absent |= needed - set(implemented)
    return sorted(absent)
