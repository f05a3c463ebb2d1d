"""A matrix run: several candidates, the same seed and budget, one combined report.

Application teams choosing a loop want one table, not a report per loop: each
row is a candidate, each column an area of docs/spec.md (its ``## X. Title``
sections: construction, lazy initialisation, ..., cancelling leftovers) plus
the HANG and CRASH outcomes, and each cell says whether the candidate
conformed there (and on how many scenarios that exercised the area) or
diverged (how many groups, how many scenarios). A candidate that cannot be
started (not installed, say) is a row of its own with the reason, and the
run goes on with the next one.

The per-candidate findings are ordinary reports (``conformance.report``),
written next to the combined one, so every divergence keeps its smallest
scenario and reproducer; ``conformance.html_report`` renders the matrix and
those reports as one HTML page.

The JSON (``MATRIX_SCHEMA``; 2 added ``environment``): ``settings``,
``environment`` (the driver's, as in a report: interpreter, OS, packages),
``areas`` (``id``, ``title``), ``outcome_columns``, and ``rows``: per
candidate its ``info``, ``reference``, ``report`` (the findings file, relative
to the matrix JSON), ``examples``, ``statuses``, ``divergence_groups``,
``flaky_groups`` and ``cells`` (per column: ``state``, ``groups``,
``scenarios``, ``exercised``), or ``unavailable`` with the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from conformance.clauses import DEFAULT_SPEC

MATRIX_SCHEMA = 2
#: Columns for the outcomes that are not about a clause.
OUTCOME_COLUMNS = ("HANG", "CRASH")

_AREA_HEADING = re.compile(r"^## ([A-Z])\. (.+)$")

DIVERGING, CONFORMING, NOT_EXERCISED = "diverging", "conforming", "not exercised"


def areas(spec: Optional[Path] = None) -> List[Tuple[str, str]]:
    """The spec's areas, ``(letter, title)``, in the spec's order (``## K. Cancelling ...``)."""
    text = (spec or DEFAULT_SPEC).read_text(encoding="utf-8")
    return [(m.group(1), m.group(2).strip()) for m in map(_AREA_HEADING.match, text.splitlines()) if m]


def area_of(clause: str) -> str:
    """The area a clause ID belongs to: its leading letters (``R14-1`` is in area ``R``)."""
    return re.match(r"[A-Z]*", clause).group(0)[:1] or clause  # type: ignore[union-attr]


@dataclass
class Row:
    """One candidate of the matrix: its report, or why it has none."""

    candidate: str
    report: Optional[Dict[str, Any]] = None
    unavailable: Optional[str] = None
    report_path: Optional[str] = None


def cells(report: Dict[str, Any], area_letters: List[str]) -> Dict[str, Dict[str, Any]]:
    """Each column's cell for one candidate's report: state, groups, scenarios, exercised."""
    out = {letter: {"state": NOT_EXERCISED, "groups": 0, "scenarios": 0, "exercised": 0} for letter in area_letters}
    out.update({column: {"state": CONFORMING, "groups": 0, "scenarios": 0} for column in OUTCOME_COLUMNS})
    for clause, count in report["clauses_exercised"].items():
        cell = out.get(area_of(clause))
        if cell is not None and "exercised" in cell:
            cell["exercised"] += count
            if cell["state"] == NOT_EXERCISED:
                cell["state"] = CONFORMING
    for group in report["divergences"]:
        column = group["category"] if group["category"] in OUTCOME_COLUMNS else area_of(group["clause"])
        cell = out.setdefault(column, {"state": NOT_EXERCISED, "groups": 0, "scenarios": 0, "exercised": 0})
        cell["state"] = DIVERGING
        cell["groups"] += 1
        cell["scenarios"] += group["count"]
    return out


def build(
    rows: List[Row],
    settings: Dict[str, Any],
    spec: Optional[Path] = None,
    environment: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The combined report as a JSON-able dict (``environment``: default, this driver's)."""
    if environment is None:
        from conformance.report import environment as driver_environment  # the campaign machinery, only when needed

        environment = driver_environment()
    spec_areas = areas(spec)
    letters = [letter for letter, _ in spec_areas]
    document_rows = []
    for row in rows:
        entry: Dict[str, Any] = {"candidate": row.candidate}
        if row.report is None:
            entry["unavailable"] = row.unavailable
        else:
            report = row.report
            entry.update(
                {
                    "info": report["candidate_info"],
                    "reference": report["reference"],
                    "report": row.report_path,
                    "examples": report["examples"],
                    "statuses": report["statuses"],
                    "divergence_groups": len(report["divergences"]),
                    "flaky_groups": len(report["flaky"]),
                    "cells": cells(report, letters),
                }
            )
        document_rows.append(entry)
    return {
        "schema": MATRIX_SCHEMA,
        "settings": settings,
        "environment": environment,
        "areas": [{"id": letter, "title": title} for letter, title in spec_areas],
        "outcome_columns": list(OUTCOME_COLUMNS),
        "rows": document_rows,
    }


def dumps(document: Dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def markdown(document: Dict[str, Any]) -> str:
    """The matrix as a Markdown table, with a legend and a line per unavailable candidate."""
    columns = [area["id"] for area in document["areas"]] + document["outcome_columns"]
    settings = document["settings"]
    lines = [
        "# Runner conformance matrix",
        "",
        f"Seed {settings.get('seed')}, {settings.get('mode')} mode, "
        + (f"budget {settings['budget_s']} s" if settings.get("budget_s") else f"{settings.get('examples')} scenarios")
        + " per candidate.",
        "",
        "Areas: " + "; ".join(f"**{area['id']}** {area['title']}" for area in document["areas"]) + ".",
        "",
        "A cell is ✅ n (no divergence; the area's clauses were exercised n times), ❌ g/n (g divergence "
        "groups over n scenarios) or · (not exercised).",
        "",
        "| candidate | kind | version | scenarios | " + " | ".join(columns) + " |",
        "|---|---|---|---|" + "---|" * len(columns),
    ]
    unavailable = []
    for row in document["rows"]:
        if "unavailable" in row:
            unavailable.append(f"- `{row['candidate']}`: {row['unavailable']}")
            continue
        info = row["info"]
        version = ", ".join(part for part in (info.get("version"), info.get("python")) if part)
        rendered = [_cell(row["cells"][column]) for column in columns]
        lines.append(
            f"| `{row['candidate']}` | {info.get('kind', '?')} | {version} | {row['examples']} | "
            + " | ".join(rendered)
            + " |"
        )
    if unavailable:
        lines += ["", "Not run:", "", *unavailable]
    lines += ["", "Each candidate's report (divergences, smallest scenarios, reproducers):", ""]
    lines += [f"- `{row['candidate']}`: {row['report']}" for row in document["rows"] if row.get("report")]
    return "\n".join(lines) + "\n"


def _cell(cell: Dict[str, Any]) -> str:
    if cell["state"] == DIVERGING:
        return f"❌ {cell['groups']}/{cell['scenarios']}"
    if cell["state"] == CONFORMING:
        return f"✅ {cell['exercised']}" if "exercised" in cell else "✅"
    return "·"
