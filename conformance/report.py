"""Reports: the findings of a campaign as JSON (for machines) and Markdown (for people).

The JSON is deterministic: the same seed and versions give the same bytes
apart from the ``elapsed_s`` timing field, so two runs can be diffed
(tests/test_determinism.py does). A ``--budget`` run is the exception: how
many scenarios fit in the budget depends on the machine.

The JSON's shape is versioned by ``schema`` (``REPORT_SCHEMA``, bumped on any
change of shape; schema 2 added ``environment.python``, ``os``, ``machine``
and ``packages``). Its fields:

- ``schema``: this integer; ``candidate``, ``reference``: the two specs;
  ``candidate_info``, ``reference_info``: their workers' handshakes (kind,
  version, python, executable).
- ``seed``, ``examples`` (scenarios checked), ``elapsed_s``, ``settings``
  (examples, budget_s, mode, timeout_s, strict; or what ``replay`` replayed).
- ``environment``: the driver's ``driver_python`` (X.Y.Z),
  ``implementation``, ``platform`` (OS name), ``python`` (the full
  ``sys.version``), ``os`` (``platform.platform()``), ``machine``, and
  ``packages``: every installed distribution's version (importlib.metadata),
  by name, sorted; the versions a report's findings depend on.
- ``statuses``: scenarios per outcome (same, diverged, duplicate, ...);
  ``clauses_exercised``: scenarios per spec clause.
- ``divergences``, ``flaky``, ``version_differences``: groups, largest first,
  each with ``clause``, ``category``, ``count``, ``signature``, the smallest
  ``scenario``, its ``differences`` (``where``, ``category``, ``clause``,
  ``reference``, ``candidate``), both observations (``reference``,
  ``candidate``: their ``calls`` with each call's ``log``, and ``end``), the
  candidate's ``reruns`` and the ``reproducer`` script.
- ``invalid``: scenarios the reference could not run (at most 20);
  ``expectations``: with ``--expectations`` only, how the findings were judged.

``conformance.html_report`` renders the same document as one HTML page.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any, Dict, List, Optional

from conformance.campaign import CampaignResult, Group
from conformance.reproducer import ReproducerError, render

REPORT_SCHEMA = 2


def build(
    result: CampaignResult,
    candidate: Dict[str, Any],
    reference: Dict[str, Any],
    settings: Dict[str, Any],
) -> Dict[str, Any]:
    """The report as a JSON-able dict (``candidate``/``reference``: worker handshakes)."""
    return {
        "schema": REPORT_SCHEMA,
        "candidate": candidate.get("spec"),
        "candidate_info": candidate,
        "reference": reference.get("spec"),
        "reference_info": reference,
        "seed": result.seed,
        "examples": result.examples,
        "elapsed_s": round(result.elapsed_s, 3),
        "settings": settings,
        "environment": environment(),
        "statuses": dict(sorted(result.statuses.items())),
        "clauses_exercised": dict(sorted(result.clauses.items())),
        "divergences": [_group(g, candidate) for g in _ordered(result.divergences)],
        "flaky": [_group(g, candidate) for g in _ordered(result.flaky)],
        "version_differences": [_group(g, candidate) for g in _ordered(result.version_differences)],
        "invalid": [{"scenario": r.scenario.to_json(), "reference": r.reference} for r in result.invalid[:20]],
    }


def environment() -> Dict[str, Any]:
    """Where the driver ran: a finding may hold only for some interpreter, OS or package version."""
    return {
        "driver_python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.system(),
        "python": sys.version,
        "os": platform.platform(),
        "machine": platform.machine(),
        "packages": packages(),
    }


def packages() -> Dict[str, str]:
    """Every installed distribution and its version, by name; the first on ``sys.path`` wins, as for imports."""
    found: Dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name and name not in found:
            found[name] = distribution.version or "?"
    return dict(sorted(found.items()))  # the order json.dumps(sort_keys=True) writes them in


def _ordered(groups: List[Group]) -> List[Group]:
    return sorted(groups, key=lambda g: (-g.count, g.signature))


def _group(group: Group, candidate: Dict[str, Any]) -> Dict[str, Any]:
    smallest = group.smallest
    return {
        "clause": group.clause,
        "category": group.category,
        "count": group.count,
        "signature": group.signature,
        "scenario": smallest.scenario.to_json(),
        "differences": [d.to_json() for d in smallest.differences],
        "reference": smallest.reference,
        "candidate": smallest.candidate,
        "reruns": smallest.reruns,
        "reproducer": _reproducer(smallest.scenario, candidate),
    }


def _reproducer(scenario: Any, candidate: Dict[str, Any]) -> str:
    """The standalone script, or why there is none (an ``exec:`` worker is not Python we can import)."""
    # A candidate found under another interpreter (NAME@PYTHON) is reproduced there; the reference side
    # stays with the interpreter running the script, which needs asyncio.Runner (3.11+).
    executable = candidate.get("executable")
    pythons = {"candidate": executable} if executable and executable != sys.executable else None
    try:
        return render(scenario, candidate.get("spec", "asyncio"), candidate.get("kind", "runner"), pythons=pythons)
    except ReproducerError as exc:
        return (
            f"# No standalone Python script for this candidate: {exc}.\n"
            "# Replay the scenario above with: conformance replay FILE --candidate <the same spec>\n"
        )


def dumps(report: Dict[str, Any]) -> str:
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def markdown(report: Dict[str, Any]) -> str:
    """A readable report: what ran, what was exercised, and each divergence group."""
    lines = [
        f"# Runner conformance: `{report['candidate']}` against `{report['reference']}`",
        "",
        f"- Candidate: `{report['candidate']}` ({_info(report['candidate_info'])})",
        f"- Reference: `{report['reference']}` ({_info(report['reference_info'])})",
        f"- Seed {report['seed']}, {report['examples']} scenarios in {report['elapsed_s']:.1f} s",
        f"- Outcomes: {', '.join(f'{k} {v}' for k, v in report['statuses'].items()) or 'none'}",
        "",
    ]
    divergences = report["divergences"]
    versions = report.get("version_differences", [])
    if divergences:
        lines.append(f"**{len(divergences)} divergence group(s).**")
    else:
        lines.append("**No divergence.**")
    if versions:
        lines += ["", f"{len(versions)} group(s) of version differences, which the spec predicts for these versions."]
    lines += ["", "## Clauses exercised", "", "| clause | scenarios |", "|---|---|"]
    lines += [f"| {clause} | {count} |" for clause, count in report["clauses_exercised"].items()]
    sections = (
        ("Divergences", divergences),
        ("Flaky (not counted as divergences)", report["flaky"]),
        ("Version differences (the spec predicts them for the two sides' Python versions)", versions),
    )
    for title, groups in sections:
        if not groups:
            continue
        lines += ["", f"## {title}", ""]
        for number, group in enumerate(groups, 1):
            lines += _markdown_group(number, group)
    if report["invalid"]:
        lines += ["", "## Scenarios the reference could not run", ""]
        lines += [f"- `{json.dumps(item['reference'])[:200]}`" for item in report["invalid"]]
    lines += _markdown_environment(report.get("environment", {}), report.get("settings", {}))
    return "\n".join(lines) + "\n"


def _markdown_environment(env: Dict[str, Any], settings: Dict[str, Any]) -> List[str]:
    """Where and how the run was made, installed packages included: what a reader needs to compare two reports."""
    interpreter = env.get("python") or env.get("driver_python", "?")
    lines = [
        "",
        "## Environment",
        "",
        f"- Driver: {env.get('implementation', '?')} {' '.join(str(interpreter).split())}",
        f"- OS: {env.get('os') or env.get('platform', '?')} ({env.get('machine') or '?'})",
        "- Settings: " + ", ".join(f"{key} {value}" for key, value in sorted(settings.items())),
    ]
    packages = env.get("packages")
    if packages:
        lines += ["", f"<details><summary>{len(packages)} installed packages</summary>", ""]
        lines += ["| package | version |", "|---|---|"]
        lines += [f"| {name} | {version} |" for name, version in packages.items()]
        lines += ["", "</details>"]
    return lines


def _info(info: Dict[str, Any]) -> str:
    parts = [info.get("kind", "?"), info.get("version") or "", info.get("python") or ""]
    return ", ".join(p for p in parts if p)


def _markdown_group(number: int, group: Dict[str, Any]) -> List[str]:
    lines = [
        f"### {number}. {group['clause']} — {group['category']} ({group['count']} scenarios)",
        "",
        f"The candidate's re-runs of this scenario showed: {', '.join(group['reruns']) or 'not re-run'}.",
        "",
        "Smallest scenario:",
        "",
        "```json",
        json.dumps(group["scenario"], sort_keys=True),
        "```",
        "",
        "| where | reference | candidate |",
        "|---|---|---|",
    ]
    for difference in group["differences"]:
        lines.append(
            f"| `{difference['where']}` | `{_cell(difference['reference'])}` | `{_cell(difference['candidate'])}` |"
        )
    lines += ["", "<details><summary>Reproducer</summary>", "", "```python", group["reproducer"].rstrip(), "```"]
    lines += ["", "</details>", ""]
    return lines


def _cell(value: Any, limit: Optional[int] = 300) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False).replace("|", "\\|").replace("`", "'")
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
