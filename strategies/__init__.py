"""Hypothesis strategies that generate valid scenarios (see ``conformance.scenario``).

``scenarios(kind)`` draws whole programs a candidate of that kind can run;
``task_graphs()`` and ``runner_configs(kind)`` draw their parts; ``describe``
labels what a scenario exercises, and ``record`` reports the labels to
Hypothesis (``event``) and steers towards interacting features (``target``)
from a test body: strategies never record events themselves.

Test-side only: needs Hypothesis, unlike ``conformance.scenario``.
"""

from strategies.describe import INTERACTIONS, describe, record
from strategies.scenarios import KINDS, MAX_GRAPH_TASKS, runner_configs, scenarios, task_graphs

__all__ = [
    "INTERACTIONS",
    "KINDS",
    "MAX_GRAPH_TASKS",
    "describe",
    "record",
    "runner_configs",
    "scenarios",
    "task_graphs",
]
