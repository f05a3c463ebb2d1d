"""Hypothesis strategies that generate valid scenarios (see ``conformance.scenario``).

``scenarios(kind)`` draws whole programs a candidate of that kind can run;
``task_graphs()`` and ``runner_configs(kind)`` draw their parts; ``describe``
labels what a scenario exercises (call ``hypothesis.event`` on the labels from
a test body: strategies never record events themselves).

Test-side only: needs Hypothesis, unlike ``conformance.scenario``.
"""

from strategies.describe import describe
from strategies.scenarios import KINDS, MAX_GRAPH_TASKS, runner_configs, scenarios, task_graphs

__all__ = ["KINDS", "MAX_GRAPH_TASKS", "describe", "runner_configs", "scenarios", "task_graphs"]
