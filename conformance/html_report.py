"""The HTML report: one self-contained page per findings JSON, to read in a browser opened from disk.

A findings JSON (``conformance.report``: one candidate) or a matrix JSON
(``conformance.matrix``: one row per candidate, each row's own findings
JSON next to it) becomes one page, in the spirit of wpt.fyi and
test262.fyi: the environment the run had (interpreter, OS, every installed
package, seed, budget), a matrix of candidates × areas of the spec with a
per-clause breakdown, a bar chart of divergent scenarios per area, and
every divergence group with its smallest scenario, the two observations
side by side (differing lines highlighted), the two runs' timelines and the
reproducer script.

The page needs nothing but itself: no network, no external CSS, JS or
fonts; the CSS and the SVG chart are inline, and the only script (the
reproducers' copy buttons) is inline too and optional, since all content is
in the HTML. Every string that comes from a report goes through
``html.escape``: candidates, scenarios and observations carry arbitrary text.

Numbers a reader (or a test) may want to check carry ``data-*`` attributes:
``data-total-examples`` on the summary, ``data-candidate``,
``data-examples``, ``data-divergence-groups`` and
``data-divergence-scenarios`` on each matrix row, ``data-state``,
``data-groups``, ``data-scenarios`` and ``data-exercised`` on each cell,
``data-count`` on each group, and each such element's text is that number.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from conformance import matrix

#: The kinds of groups a findings JSON has, with their headings: only the first counts as divergence.
GROUP_KINDS = (
    ("divergences", "divergence", "Divergences"),
    ("flaky", "flaky", "Flaky (outcome changes on re-run; not counted as divergences)"),
    ("version_differences", "version", "Version differences (the spec predicts them for the two Python versions)"),
)
#: Bar colours, one per candidate (cycled): distinguishable and readable on white.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


class ReportError(Exception):
    """A file that is not a findings or matrix JSON this renderer can read."""


@dataclass
class _Row:
    """One candidate of the page: its findings (when it ran) and its matrix cells."""

    candidate: str
    report: Optional[Dict[str, Any]] = None
    cells: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    unavailable: Optional[str] = None
    examples: int = 0
    info: Dict[str, Any] = field(default_factory=dict)


@dataclass
class _Page:
    """What every section renders from, the same for a single run and for a matrix."""

    title: str
    areas: List[Dict[str, str]]
    columns: List[str]
    rows: List[_Row]
    settings: Dict[str, Any]
    environment: Dict[str, Any]
    reference: Optional[str]


# ------------------------------------------------------------------ entry points


def load(path: Path) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """A findings or matrix JSON, and for a matrix the per-candidate findings it names (those still on disk)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read a findings JSON: {exc}") from None
    if not isinstance(document, dict) or not ("rows" in document or "divergences" in document):
        raise ReportError(f"{path}: neither a findings JSON ('divergences') nor a matrix JSON ('rows')")
    reports: Dict[str, Dict[str, Any]] = {}
    for row in document.get("rows", []):
        name = row.get("report")
        target = Path(path).parent / name if name else None
        try:
            if target is not None and target.is_file():
                reports[row["candidate"]] = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # the matrix still renders; that candidate's groups are not shown
    return document, reports


def render(document: Dict[str, Any], reports: Optional[Dict[str, Dict[str, Any]]] = None) -> str:
    """The page for a findings JSON, or for a matrix JSON with its candidates' findings (``reports``)."""
    page = _matrix_page(document, reports or {}) if "rows" in document else _run_page(document)
    body = [
        _summary(page),
        _environment(page),
        _matrix_table(page),
        _clause_table(page),
        _chart(page),
        *(_findings(index, row) for index, row in enumerate(page.rows) if row.report is not None),
    ]
    return _document(page.title, "\n".join(body))


def _run_page(report: Dict[str, Any]) -> _Page:
    """A single run is a matrix of one row."""
    letters_titles = matrix.areas()
    letters = [letter for letter, _ in letters_titles]
    row = _Row(
        candidate=str(report.get("candidate")),
        report=report,
        cells=matrix.cells(report, letters),
        examples=int(report.get("examples", 0)),
        info=report.get("candidate_info", {}),
    )
    return _Page(
        title=f"Runner conformance: {report.get('candidate')} against {report.get('reference')}",
        areas=[{"id": letter, "title": title} for letter, title in letters_titles],
        columns=letters + list(matrix.OUTCOME_COLUMNS),
        rows=[row],
        settings={**report.get("settings", {}), "seed": report.get("seed")},
        environment=report.get("environment", {}),
        reference=report.get("reference"),
    )


def _matrix_page(document: Dict[str, Any], reports: Dict[str, Dict[str, Any]]) -> _Page:
    """A matrix: the cells come from the matrix JSON; groups from each candidate's findings, when at hand."""
    rows = []
    for entry in document["rows"]:
        rows.append(
            _Row(
                candidate=str(entry["candidate"]),
                report=reports.get(entry["candidate"]),
                cells=entry.get("cells", {}),
                unavailable=entry.get("unavailable"),
                examples=int(entry.get("examples", 0)),
                info=entry.get("info", {}),
            )
        )
    references = sorted({str(entry["reference"]) for entry in document["rows"] if entry.get("reference")})
    environment = document.get("environment") or next((r.report.get("environment", {}) for r in rows if r.report), {})
    return _Page(
        title="Runner conformance matrix",
        areas=document["areas"],
        columns=[area["id"] for area in document["areas"]] + list(document.get("outcome_columns", [])),
        rows=rows,
        settings=document.get("settings", {}),
        environment=environment,
        reference=", ".join(references) or None,
    )


# ------------------------------------------------------------------ helpers


def _e(value: Any) -> str:
    """Escaped text of any value: every string from a report is untrusted."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _number(value: int, name: str) -> str:
    """A number the page shows, findable by ``data-NAME`` with the same value as its text."""
    return f'<span class="n" data-{name}="{int(value)}">{int(value)}</span>'


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


def _divergent_scenarios(row: _Row) -> int:
    return sum(int(group.get("count", 0)) for group in (row.report or {}).get("divergences", []))


def _divergence_groups(row: _Row) -> int:
    return len((row.report or {}).get("divergences", [])) if row.report else _cell_total(row, "groups")


def _cell_total(row: _Row, key: str) -> int:
    return sum(int(cell.get(key, 0)) for cell in row.cells.values())


# ------------------------------------------------------------------ sections


def _summary(page: _Page) -> str:
    """The headline: what was compared with what, how many scenarios, how many divergence groups."""
    ran = [row for row in page.rows if row.unavailable is None]
    total = sum(row.examples for row in ran)
    groups = sum(_divergence_groups(row) for row in ran)
    return (
        f"<header><h1>{_e(page.title)}</h1>"
        f"<p>Reference <code>{_e(page.reference or '?')}</code>; {len(ran)} candidate(s) run, "
        f'<span class="n" data-total-examples="{total}">{total}</span> scenarios in all, '
        f'<span class="n" data-total-divergence-groups="{groups}">{groups}</span> divergence group(s).</p></header>'
    )


def _environment(page: _Page) -> str:
    """Everything needed to tell whether two reports are comparable, or to reproduce this one."""
    env, settings = page.environment, page.settings
    interpreter = " ".join(str(env.get(k)) for k in ("implementation", "python") if env.get(k))
    size = f"budget {settings['budget_s']} s" if settings.get("budget_s") else f"{settings.get('examples')} scenarios"
    facts = [
        ("Interpreter (driver)", interpreter or env.get("driver_python", "?")),
        ("OS", env.get("os") or env.get("platform", "?")),
        ("Seed", settings.get("seed")),
        ("Size", size),
        ("Mode", settings.get("mode", "-")),
        ("Per-scenario timeout", settings.get("timeout_s") or "adaptive"),
        ("Strict messages", settings.get("strict", False)),
    ]
    if settings.get("replayed"):
        facts.append(("Replayed", settings["replayed"]))
    items = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    candidates = "".join(
        f"<tr><th><code>{_e(row.candidate)}</code></th><td>{_e(_describe(row))}</td></tr>" for row in page.rows
    )
    return (
        '<section id="environment"><h2>Environment</h2>'
        f'<table class="facts">{items}{candidates}</table>{_packages(env.get("packages"))}</section>'
    )


def _describe(row: _Row) -> str:
    if row.unavailable is not None:
        return f"not run: {row.unavailable}"
    parts = [row.info.get("kind"), row.info.get("version"), row.info.get("python") and f"Python {row.info['python']}"]
    return ", ".join(str(p) for p in parts if p) or "-"


def _packages(packages: Optional[Dict[str, str]]) -> str:
    if not packages:
        return "<p>Installed packages: not recorded in this findings JSON (written before report schema 2).</p>"
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(version)}</td></tr>" for name, version in packages.items())
    return (
        f"<details><summary>{len(packages)} installed packages (importlib.metadata)</summary>"
        f'<table class="packages"><tr><th>package</th><th>version</th></tr>{rows}</table></details>'
    )


def _matrix_table(page: _Page) -> str:
    """Candidates × areas: the table to read first."""
    titles = {area["id"]: area["title"] for area in page.areas}
    head = "".join(f'<th title="{_e(titles.get(c, c))}">{_e(c)}</th>' for c in page.columns)
    body = "".join(_matrix_row(page, row) for row in page.rows)
    legend = "; ".join(f"<b>{_e(area['id'])}</b> {_e(area['title'])}" for area in page.areas)
    return (
        '<section id="matrix"><h2>Matrix</h2>'
        '<p class="legend"><span class="conforming">✓ n</span> no divergence, the area exercised by n scenarios; '
        '<span class="diverging">✗ g/n</span> g divergence groups over n scenarios; '
        '<span class="not-exercised">·</span> not exercised.</p>'
        '<table class="matrix" data-matrix="areas"><thead><tr><th>candidate</th><th>scenarios</th>'
        f"<th>groups</th><th>divergent scenarios</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<p class="legend">Areas: {legend}.</p></section>'
    )


def _matrix_row(page: _Page, row: _Row) -> str:
    name = _e(row.candidate)
    if row.unavailable is not None:
        return (
            f'<tr data-candidate="{name}" data-unavailable="1"><th><code>{name}</code></th>'
            f'<td colspan="{len(page.columns) + 3}" class="unavailable">not run: {_e(row.unavailable)}</td></tr>'
        )
    scenarios = _divergent_scenarios(row) if row.report else _cell_total(row, "scenarios")
    cells = "".join(_matrix_cell(row.cells.get(column)) for column in page.columns)
    return (
        f'<tr data-candidate="{name}"><th><code>{name}</code></th>'
        f"<td>{_number(row.examples, 'examples')}</td><td>{_number(_divergence_groups(row), 'divergence-groups')}</td>"
        f"<td>{_number(scenarios, 'divergence-scenarios')}</td>{cells}</tr>"
    )


def _matrix_cell(cell: Optional[Dict[str, Any]]) -> str:
    cell = cell or {"state": matrix.NOT_EXERCISED, "groups": 0, "scenarios": 0}
    state = cell["state"]
    attrs = " ".join(f'data-{key}="{int(cell.get(key, 0))}"' for key in ("groups", "scenarios", "exercised"))
    css = state.replace(" ", "-")
    if state == matrix.DIVERGING:
        text = f"✗ {cell['groups']}/{cell['scenarios']}"
    elif state == matrix.CONFORMING:
        text = f"✓ {cell['exercised']}" if "exercised" in cell else "✓"
    else:
        text = "·"
    return f'<td class="{css}" data-state="{_e(state)}" {attrs}>{_e(text)}</td>'


def _clause_table(page: _Page) -> str:
    """Per clause, per candidate: how often exercised, and the divergent scenarios attributed to it."""
    reported = [row for row in page.rows if row.report is not None]
    if not reported:
        return ""
    clauses = sorted({c for row in reported for c in _clause_counts(row.report)}, key=_clause_key(page))
    head = "".join(f"<th><code>{_e(row.candidate)}</code></th>" for row in reported)
    lines = []
    for clause in clauses:
        cells = []
        for row in reported:
            exercised, diverging = _clause_counts(row.report).get(clause, (0, 0))
            css = "diverging" if diverging else ("conforming" if exercised else "not-exercised")
            text = f"✗ {diverging}" if diverging else (f"✓ {exercised}" if exercised else "·")
            cells.append(f'<td class="{css}" data-exercised="{exercised}" data-scenarios="{diverging}">{text}</td>')
        lines.append(f'<tr data-clause="{_e(clause)}"><th>{_e(clause)}</th>{"".join(cells)}</tr>')
    return (
        '<section id="clauses"><details><summary>Per clause (scenarios exercising it; ✗: divergent scenarios)'
        f'</summary><table class="matrix" data-matrix="clauses"><thead><tr><th>clause</th>{head}</tr></thead>'
        f"<tbody>{''.join(lines)}</tbody></table></details></section>"
    )


def _clause_counts(report: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    counts = {clause: [int(n), 0] for clause, n in report.get("clauses_exercised", {}).items()}
    for group in report.get("divergences", []):
        counts.setdefault(str(group.get("clause")), [0, 0])[1] += int(group.get("count", 0))
    return {clause: (a, b) for clause, (a, b) in counts.items()}


def _clause_key(page: _Page) -> Any:
    """Clauses in the spec's order of areas, then numerically (K-2 before K-10)."""
    order = {area["id"]: index for index, area in enumerate(page.areas)}

    def key(clause: str) -> Tuple[int, List[int], str]:
        numbers = [int(n) for n in re.findall(r"\d+", clause)]
        return (order.get(matrix.area_of(clause), len(order)), numbers, clause)

    return key


def _chart(page: _Page) -> str:
    """An inline SVG bar chart: divergent scenarios per column (area, HANG, CRASH), one bar per candidate."""
    rows = [row for row in page.rows if row.unavailable is None]
    columns = [c for c in page.columns if any(int(r.cells.get(c, {}).get("scenarios", 0)) for r in rows)]
    if not columns:
        return '<section id="chart"><h2>Divergences per area</h2><p>No divergence to chart.</p></section>'
    peak = max(int(r.cells.get(c, {}).get("scenarios", 0)) for r in rows for c in columns)
    bar, gap, height, top, bottom = 18, 24, 180, 20, 40
    group_width = bar * len(rows) + gap
    width = 50 + group_width * len(columns)
    parts = [f'<line x1="45" y1="{top + height}" x2="{width}" y2="{top + height}" stroke="#444"/>']
    for index, column in enumerate(columns):
        x0 = 50 + index * group_width
        parts.append(
            f'<text x="{x0 + bar * len(rows) / 2}" y="{top + height + 18}" text-anchor="middle">{_e(column)}</text>'
        )
        for number, row in enumerate(rows):
            value = int(row.cells.get(column, {}).get("scenarios", 0))
            h = round(height * value / peak, 1) if peak else 0
            x, y = x0 + number * bar, top + height - h
            parts.append(
                f'<rect x="{x}" y="{y}" width="{bar - 2}" height="{h}" fill="{PALETTE[number % len(PALETTE)]}" '
                f'data-candidate="{_e(row.candidate)}" data-column="{_e(column)}" data-scenarios="{value}">'
                f"<title>{_e(row.candidate)}, {_e(column)}: {value} divergent scenario(s)</title></rect>"
            )
            if value:
                parts.append(f'<text x="{x + (bar - 2) / 2}" y="{y - 3}" text-anchor="middle">{value}</text>')
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[n % len(PALETTE)]}"></span>{_e(row.candidate)}</li>'
        for n, row in enumerate(rows)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + bottom}" role="img" '
        f'aria-label="Divergent scenarios per area and candidate" font-size="11">{"".join(parts)}</svg>'
    )
    return (
        '<section id="chart"><h2>Divergences per area</h2>'
        f"<p>Divergent scenarios per area of the spec (and HANG, CRASH), one bar per candidate.</p>{svg}"
        f'<ul class="chart-legend">{legend}</ul></section>'
    )


# ------------------------------------------------------------------ groups


def _findings(index: int, row: _Row) -> str:
    """One candidate's groups: divergences first, then flaky ones and version differences."""
    report = row.report or {}
    sections = []
    for key, kind, title in GROUP_KINDS:
        groups = report.get(key) or []
        if not groups and key != "divergences":
            continue
        rendered = "".join(_group(f"c{index}-{kind}-{n}", kind, row.candidate, n, g) for n, g in enumerate(groups, 1))
        sections.append(f"<h3>{_e(title)}</h3>{rendered or '<p>No divergence.</p>'}")
    invalid = report.get("invalid") or []
    if invalid:
        items = "".join(f"<li><code>{_e(json.dumps(item.get('reference'))[:300])}</code></li>" for item in invalid)
        sections.append(f"<h3>Scenarios the reference could not run</h3><ul>{items}</ul>")
    return (
        f'<section class="candidate" data-candidate="{_e(row.candidate)}">'
        f"<h2>Findings for <code>{_e(row.candidate)}</code></h2>{''.join(sections)}</section>"
    )


def _group(anchor: str, kind: str, candidate: str, number: int, group: Dict[str, Any]) -> str:
    """A root cause: one clause and difference, how often, and its smallest scenario in every view."""
    count = int(group.get("count", 0))
    reruns = ", ".join(str(r) for r in group.get("reruns") or []) or "not re-run"
    return (
        f'<section class="group {kind}" id="{anchor}" data-kind="{kind}" data-candidate="{_e(candidate)}" '
        f'data-clause="{_e(group.get("clause"))}" data-category="{_e(group.get("category"))}">'
        f'<h4><a href="#{anchor}">{number}.</a> {_e(group.get("clause"))} — {_e(group.get("category"))} '
        f"({_number(count, 'count')} scenarios)</h4>"
        f"<p>Signature <code>{_e(group.get('signature', ''))}</code>. The candidate's re-runs showed: {_e(reruns)}.</p>"
        f"{_differences(group.get('differences') or [])}"
        f"<details open><summary>Smallest scenario (JSON)</summary><pre>{_e(_pretty(group.get('scenario')))}</pre>"
        "</details>"
        f"<details open><summary>Observations side by side (differing lines highlighted)</summary>"
        f"{_side_by_side(group.get('reference'), group.get('candidate'))}</details>"
        f"<details open><summary>Timeline of the two runs</summary>"
        f"{_timeline(group.get('reference'), group.get('candidate'))}</details>"
        f"{_reproducer(anchor, group.get('reproducer') or '')}</section>"
    )


def _differences(differences: List[Dict[str, Any]]) -> str:
    if not differences:
        return ""
    rows = "".join(
        f"<tr><td><code>{_e(d.get('where'))}</code></td><td>{_e(d.get('category'))} {_e(d.get('clause', ''))}</td>"
        f"<td><pre>{_e(_pretty(d.get('reference')))}</pre></td><td><pre>{_e(_pretty(d.get('candidate')))}</pre></td>"
        "</tr>"
        for d in differences
    )
    return (
        '<table class="differences"><thead><tr><th>where</th><th>what</th><th>reference</th><th>candidate</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _aligned(left: List[str], right: List[str]) -> Iterable[Tuple[Optional[str], Optional[str], bool]]:
    """The two sequences aligned (difflib), each pair with whether it differs."""
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            yield from ((a, b, False) for a, b in zip(left[i1:i2], right[j1:j2]))
        else:
            yield from ((a, b, True) for a, b in zip_longest(left[i1:i2], right[j1:j2]))


def _side_by_side(reference: Any, candidate: Any) -> str:
    """Both observations as pretty JSON, aligned line by line, the lines that differ marked."""
    rows = []
    for a, b, differs in _aligned(_pretty(reference).splitlines(), _pretty(candidate).splitlines()):
        css = ' class="differs"' if differs else ""
        rows.append(f"<tr{css}><td>{_e(a or '')}</td><td>{_e(b or '')}</td></tr>")
    return (
        '<table class="side-by-side code"><thead><tr><th>reference</th><th>candidate</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _events(observation: Any) -> List[Tuple[str, List[str]]]:
    """An observation's calls in order, each with its log, then the shutdown's log: a run's timeline."""
    if not isinstance(observation, dict):
        return [("(no observation)", [_pretty(observation)])]
    events = []
    for call in observation.get("calls") or []:
        outcome = json.dumps(call.get("outcome"), sort_keys=True, ensure_ascii=False)
        label = f"{call.get('call', '?')} {call.get('path', '')} → {outcome}"
        events.append((label, [str(line) for line in call.get("log") or []]))
    end = observation.get("end") or {}
    tail = [str(line) for line in end.get("log") or []] + [f"warning: {w}" for w in end.get("warnings") or []]
    events.append(("end", tail))
    return events


def _timeline(reference: Any, candidate: Any) -> str:
    """Two columns, one per run, call by call, every logged event in its order; differing rows marked."""
    rows = []
    for left, right in zip_longest(_events(reference), _events(candidate), fillvalue=("", [])):
        css = ' class="differs"' if left[0] != right[0] else ""
        rows.append(f'<tr class="call"><th{css}>{_e(left[0])}</th><th{css}>{_e(right[0])}</th></tr>')
        for a, b, differs in _aligned(left[1], right[1]):
            row_css = ' class="differs"' if differs else ""
            rows.append(f"<tr{row_css}><td>{_e(a or '')}</td><td>{_e(b or '')}</td></tr>")
    return (
        '<table class="timeline code"><thead><tr><th>reference</th><th>candidate</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _reproducer(anchor: str, script: str) -> str:
    return (
        f'<div class="reproducer"><h5>Reproducer <button type="button" class="copy" data-copy="{anchor}-script">'
        f'Copy</button></h5><pre id="{anchor}-script">{_e(script)}</pre></div>'
    )


# ------------------------------------------------------------------ the page


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;
color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}
code,pre,.code td{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
pre{background:#f6f8fa;padding:.5em;overflow:auto;margin:0;white-space:pre-wrap}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}
.matrix td{text-align:center;min-width:3em}.facts th{text-align:left}
.conforming{background:#dff5dd}.diverging{background:#fbd9d9;font-weight:bold}.not-exercised{background:#eee;color:#888}
.unavailable{color:#888;font-style:italic}
.code td{white-space:pre-wrap;word-break:break-all;width:50%}
tr.differs td,th.differs{background:#fff2b3}.timeline tr.call th{background:#eef;text-align:left}
.group{border:1px solid #ccc;border-radius:4px;padding:.2em 1em 1em;margin:1em 0}
.group.flaky{border-style:dashed}.group.version{border-color:#99c}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
.chart-legend{list-style:none;padding:0}.chart-legend li{display:inline-block;margin-right:1.5em}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
button.copy{font-size:12px;margin-left:1em}
"""

#: Only the copy buttons need it; the page reads the same without it.
SCRIPT = """
document.body.setAttribute("data-js", "ready");
document.querySelectorAll("button.copy").forEach(function (button) {
  button.addEventListener("click", function () {
    var text = document.getElementById(button.getAttribute("data-copy")).textContent;
    function done() { button.textContent = "Copied"; }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
    }
    if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, fallback); } else { fallback(); }
  });
});
"""


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n<script>{SCRIPT}</script>\n"
        "</body></html>\n"
    )
