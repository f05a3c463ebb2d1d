"""``conformance coverage``: the JSON document, the table printed from it, and the exit code.

The document is built once from a ``Measurement`` and the spec's clause list;
the text is rendered from the document only, so that what is printed and what
is written with ``--json`` cannot disagree. "Complete" is the bar of issue #3:
every applicable clause exercised by at least one generated scenario, and no
line or branch of ``reference/`` left unreached (lines left out by a pragma
are listed, with their reasons, not counted).

Exit codes: 0 complete, 1 incomplete, 3 internal error (the reference failed
on a generated scenario); usage errors (2) are the command line's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from conformance.clauses import DEFAULT_SPEC, NOT_APPLICABLE, clause_ids
from conformance.coverage_measure import Measurement, measure

EXERCISED, MISSING, NOT_APPLICABLE_STATUS = "exercised", "missing", "not applicable"
EXIT_COMPLETE, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 3


def command(
    strategy: Any,
    seed: int,
    examples: Optional[int],
    budget_s: Optional[float],
    json_path: Optional[str],
    spec: Optional[Path],
    settings: Dict[str, Any],
) -> int:
    """Measure the scenarios of ``strategy`` (as ``conformance run`` makes them); print, write, judge.

    Raises ``conformance.clauses.SpecError`` and
    ``conformance.coverage_measure.CoverageUnavailable`` for the command line
    to report as configuration errors.
    """
    ids = clause_ids(spec)
    measurement = measure(strategy, seed, examples, budget_s)
    document = build(measurement, ids, {**settings, "spec": str(spec or DEFAULT_SPEC)})
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(text(document, color=sys.stdout.isatty()))
    if json_path:
        print(f"wrote {json_path}")
    if document["internal_errors"]:
        return EXIT_INTERNAL
    return EXIT_COMPLETE if document["complete"] else EXIT_INCOMPLETE


def build(measurement: Measurement, clause_ids: Sequence[str], settings: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON document: settings, one entry per clause, the reference's coverage, internal errors."""
    order = list(measurement.versions)
    clauses: List[Dict[str, Any]] = []
    for clause in clause_ids:
        entry: Dict[str, Any] = {"id": clause, "examples": measurement.clauses.get(clause, 0)}
        if clause in NOT_APPLICABLE:
            entry.update(status=NOT_APPLICABLE_STATUS, reason=NOT_APPLICABLE[clause])
        else:
            entry["status"] = EXERCISED if entry["examples"] else MISSING
        entry["versions"] = [_version(v) for v in sorted(measurement.clause_versions.get(clause, ()), key=order.index)]
        clauses.append(entry)
    reference = _reference_coverage(measurement)
    missing = [entry["id"] for entry in clauses if entry["status"] == MISSING]
    return {
        "seed": measurement.seed,
        "settings": settings,
        "examples": measurement.examples,
        "runs": measurement.executions,
        "elapsed_s": round(measurement.elapsed_s, 3),
        "versions": [_version(v) for v in measurement.versions],
        "default_version": _version(measurement.default_version),
        "clauses": clauses,
        "missing_clauses": missing,
        "reference": reference,
        "internal_errors": measurement.errors,
        "complete": not missing and reference["complete"] and not measurement.errors,
    }


def _version(version: Tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _reference_coverage(measurement: Measurement) -> Dict[str, Any]:
    totals = measurement.coverage.get("totals", {})
    missing: Dict[str, Dict[str, List[Any]]] = {}
    for name, data in measurement.coverage.get("files", {}).items():
        lines = data.get("missing_lines", [])
        branches = [f"{start}->{'exit' if end < 0 else end}" for start, end in data.get("missing_branches", [])]
        if lines or branches:
            missing[name] = {"lines": lines, "branches": branches}
    statements = {"covered": totals.get("covered_lines", 0), "total": totals.get("num_statements", 0)}
    branches = {"covered": totals.get("covered_branches", 0), "total": totals.get("num_branches", 0)}
    return {
        "percent": round(float(totals.get("percent_covered", 0.0)), 2),
        "statements": statements,
        "branches": branches,
        "missing": missing,
        "excluded_lines": totals.get("excluded_lines", 0),
        "pragmas": [
            {"path": e.path, "line": e.line, "condition": e.condition, "reason": e.reason} for e in measurement.excluded
        ],
        "complete": statements["covered"] == statements["total"] and branches["covered"] == branches["total"],
    }


# ------------------------------------------------------------------ text


def text(document: Dict[str, Any], color: bool = False) -> str:
    """The table of clauses and the reference's coverage, as printed by the command."""
    versions = document["versions"]
    default = document["default_version"]
    shown = ", ".join(
        f"{v} (this interpreter's default, as in `conformance run`)" if v == default else v for v in versions
    )
    out = [
        f"{document['examples']} generated scenarios (seed {document['seed']}), each run through the reference "
        f"as CPython {shown}: {document['runs']} runs, {document['elapsed_s']:.1f} s",
        "",
        f"{'clause':7} {'examples':>8}  {'versions':11} status",
    ]
    for entry in document["clauses"]:
        status = entry["status"]
        if status == NOT_APPLICABLE_STATUS:
            status = f"not applicable: {entry['reason']}"
        elif status == MISSING:
            status = _highlight("MISSING", color)
        out.append(f"{entry['id']:7} {entry['examples']:>8}  {_span(entry['versions'], versions):11} {status}")
    applicable = [e for e in document["clauses"] if e["status"] != NOT_APPLICABLE_STATUS]
    missing = document["missing_clauses"]
    summary = f"clauses: {len(applicable) - len(missing)} of {len(applicable)} applicable exercised"
    if missing:
        summary += f"; not exercised: {' '.join(missing)}"
    out += ["", summary, ""]
    out += _reference_lines(document["reference"])
    for error in document["internal_errors"]:
        out.append(
            f"INTERNAL: the reference ({error['target']}, {error['version']}) failed on "
            f"{error['scenario']}: {error['dirty'] or error['error'].strip().splitlines()[-1]}"
        )
    out.append("")
    if document["complete"]:
        out.append("complete: every applicable clause exercised, 100% of reference/ reached")
    else:
        gaps = []
        if missing:
            gaps.append(f"{len(missing)} clause(s) not exercised")
        if not document["reference"]["complete"]:
            gaps.append("reference/ not fully reached")
        if document["internal_errors"]:
            gaps.append(f"{len(document['internal_errors'])} internal error(s)")
        out.append(_highlight("INCOMPLETE: " + ", ".join(gaps), color))
    return "\n".join(out)


def _reference_lines(reference: Dict[str, Any]) -> List[str]:
    statements, branches = reference["statements"], reference["branches"]
    out = [
        f"reference/ coverage (statements and branches): {reference['percent']:.1f}% (statements "
        f"{statements['covered']}/{statements['total']}, branches {branches['covered']}/{branches['total']})"
    ]
    for path, gaps in reference["missing"].items():
        lines, arcs = _numbers(gaps["lines"]) or "-", " ".join(gaps["branches"]) or "-"
        out.append(f"  {path}: missing lines {lines}; missing branches {arcs}")
    pragmas = reference["pragmas"]
    if pragmas:
        out.append(f"  left out: {reference['excluded_lines']} line(s), under {len(pragmas)} pragma(s):")
        out += [f"    {p['path']}:{p['line']}  {p['condition']}: {p['reason']}" for p in pragmas]
    return out


def _numbers(lines: List[int]) -> str:
    """``1, 3-5, 9``."""
    ranges: List[List[int]] = []
    for number in lines:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _span(seen: List[str], versions: List[str]) -> str:
    """``3.11-3.14``, ``3.14``, ``3.11 3.13``: the versions a clause was seen in."""
    if not seen:
        return ""
    indexes = [versions.index(v) for v in seen]
    if indexes == list(range(indexes[0], indexes[-1] + 1)) and len(indexes) > 1:
        return f"{seen[0]}-{seen[-1]}"
    return " ".join(seen)


def _highlight(message: str, color: bool) -> str:
    return f"\x1b[1;31m{message}\x1b[0m" if color else message


__all__ = ["EXERCISED", "MISSING", "NOT_APPLICABLE_STATUS", "build", "command", "text"]
