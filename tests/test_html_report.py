"""The HTML report: rendered from real findings, self-contained, escaped, and showing the JSON's numbers.

One real findings document (a mutant that does not cancel leftover tasks,
100 scenarios, seed 1) is made once for the module through the command
line; the unit tests render it (and variants of it) directly, and the
browser test opens the page in headless Chromium, as a reader would from
disk, and reads the numbers back from the DOM the browser built.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from conformance import html_report, matrix, report
from tests.test_cli import conformance

MUTANT = "tests.fixtures.mutants:NoCancelOnClose"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> Tuple[Path, Dict[str, Any]]:
    """The directory of a real run (X.json, Y.md, Y.html) and its findings document."""
    where = tmp_path_factory.mktemp("findings")
    done = conformance(
        "run", "--candidate", MUTANT, "--examples", "100", "--seed", "1", "--json", "X.json", "--report", "Y.md",
        cwd=where,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((where / "X.json").read_text(encoding="utf-8"))
    assert document["divergences"], "the mutant must be caught, or the report has little to show"
    return where, document


class Elements(HTMLParser):
    """Every element of a page with its attributes and its text: enough to read the page's numbers back."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: List[Tuple[str, Dict[str, str], List[str]]] = []
        self.open: List[Tuple[str, Dict[str, str], List[str]]] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Any]]) -> None:
        element = (tag, {k: v or "" for k, v in attrs}, [])
        self.elements.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: List[Tuple[str, Any]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            if self.open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open:
            text.append(data)

    def having(self, attribute: str) -> List[Tuple[str, Dict[str, str], str]]:
        return [element for element in self.all() if attribute in element[1]]

    def all(self) -> List[Tuple[str, Dict[str, str], str]]:
        return [(tag, attrs, "".join(text)) for tag, attrs, text in self.elements]


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def assert_numbers_match(page: str, document: Dict[str, Any]) -> Elements:
    """The page's numbers (found by their data-* attributes) are the findings JSON's, text and attribute alike."""
    dom = parse(page)
    divergences = document["divergences"]
    (total,) = dom.having("data-total-examples")
    assert total[1]["data-total-examples"] == total[2] == str(document["examples"])
    (row,) = [e for e in dom.having("data-candidate") if e[0] == "tr"]
    assert row[1]["data-candidate"] == document["candidate"]
    for name, expected in (
        ("data-examples", document["examples"]),
        ("data-divergence-groups", len(divergences)),
        ("data-divergence-scenarios", sum(group["count"] for group in divergences)),
    ):
        (shown,) = dom.having(name)
        assert shown[1][name] == shown[2] == str(expected), name
    counts = [(attrs["data-count"], text) for _, attrs, text in dom.having("data-count")]
    expected_counts = [
        str(g["count"]) for key in ("divergences", "flaky", "version_differences") for g in document[key]
    ]
    assert counts == [(c, c) for c in expected_counts]
    letters = [letter for letter, _ in matrix.areas()]
    cells = matrix.cells(document, letters)
    shown_cells = [attrs for tag, attrs, _ in dom.having("data-state") if tag == "td"]
    columns = letters + list(matrix.OUTCOME_COLUMNS)
    assert len(shown_cells) == len(columns)
    for column, attrs in zip(columns, shown_cells):
        assert attrs["data-state"] == cells[column]["state"], column
        assert attrs["data-scenarios"] == str(cells[column]["scenarios"]), column
    bars = [attrs for tag, attrs, _ in dom.having("data-column") if tag == "rect"]
    assert {b["data-column"]: int(b["data-scenarios"]) for b in bars} == {
        column: cell["scenarios"] for column, cell in cells.items() if cell["scenarios"]
    }
    return dom


# ------------------------------------------------------------------ the files the commands write


def test_run_writes_a_self_contained_html_page_next_to_its_markdown(findings):
    where, document = findings
    page = (where / "Y.html").read_text(encoding="utf-8")
    assert page == html_report.render(document)
    lowered = page.lower()
    assert "<link" not in lowered and " src=" not in lowered and "@import" not in lowered and "url(" not in lowered
    # The only URL on the page is the SVG namespace, which is a name and is never fetched.
    assert lowered.count("http") == lowered.count('xmlns="http://www.w3.org/2000/svg"')
    assert_numbers_match(page, document)


def test_the_json_has_a_versioned_schema_and_the_installed_packages(findings):
    _, document = findings
    assert document["schema"] == report.REPORT_SCHEMA == 2
    environment = document["environment"]
    assert environment["packages"]["hypothesis"] and environment["packages"]["pytest"]
    assert environment["os"] and environment["python"].startswith(environment["driver_python"])
    markdown = (findings[0] / "Y.md").read_text(encoding="utf-8")
    assert "## Environment" in markdown and f"| hypothesis | {environment['packages']['hypothesis']} |" in markdown


def test_report_rerenders_existing_findings_without_running_anything(findings, tmp_path):
    where, _ = findings
    shutil.copy(where / "X.json", tmp_path / "X.json")
    done = conformance("report", "X.json", "--html", "Z.html", "--markdown", "Z.md", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "Z.html").read_bytes() == (where / "Y.html").read_bytes()
    assert (tmp_path / "Z.md").read_bytes() == (where / "Y.md").read_bytes()
    defaults = conformance("report", "X.json", cwd=tmp_path, timeout=60)
    assert defaults.returncode == 0 and (tmp_path / "X.html").exists() and (tmp_path / "X.md").exists()


def test_report_of_something_that_is_not_findings_exits_2(tmp_path):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    # Findings damaged by hand: the shape is recognised, a field inside it is not what it should be.
    (tmp_path / "damaged.json").write_text('{"schema": 2, "divergences": [{"count": "x"}], "statuses": 3}')
    for name in ("other.json", "missing.json", "damaged.json"):
        done = conformance("report", name, cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and name in done.stderr, done.stdout + done.stderr
    assert not (tmp_path / "damaged.html").exists() and not (tmp_path / "damaged.md").exists()


# ------------------------------------------------------------------ the renderer


def test_every_group_shows_its_scenario_observations_timeline_and_reproducer(findings):
    _, document = findings
    dom = parse(html_report.render(document))
    groups = [attrs for tag, attrs, _ in dom.having("data-kind") if tag == "section"]
    assert [(g["data-clause"], g["data-category"]) for g in groups[: len(document["divergences"])]] == [
        (g["clause"], g["category"]) for g in document["divergences"]
    ]
    tables = [attrs["class"] for tag, attrs, _ in dom.elements if tag == "table" and "class" in attrs]
    assert tables.count("side-by-side code") == tables.count("timeline code") == len(groups)
    copies = [attrs["data-copy"] for tag, attrs, _ in dom.elements if tag == "button"]
    scripts = {attrs["id"]: text for tag, attrs, text in dom.having("id") if tag == "pre"}
    assert len(copies) == len(groups) and all(scripts[target] for target in copies)
    assert scripts[copies[0]] == document["divergences"][0]["reproducer"]


def columns(table: str) -> List[Tuple[bool, str, str]]:
    """A two-column table's rows: whether marked as differing, then the left and right cells' text."""
    elements = parse(table).all()
    marks = [attrs.get("class") == "differs" for tag, attrs, _ in elements if tag == "tr"][1:]  # after the header
    cells = [text for tag, _, text in elements if tag in ("td", "th")][2:]
    return [(mark, left, right) for mark, left, right in zip(marks, cells[::2], cells[1::2])]


def test_the_lines_where_the_observations_differ_are_highlighted(findings):
    _, document = findings
    top = document["divergences"][0]  # K-1: the candidate lets the leftover task finish instead of cancelling it
    assert (top["clause"], top["category"]) == ("K-1", "leftover tasks")
    rows = columns(html_report._side_by_side(top["reference"], top["candidate"]))
    assert all(left == right for marked, left, right in rows if not marked) and any(not m for m, _, _ in rows)
    marked_left = "\n".join(left for marked, left, _ in rows if marked)
    for difference in top["differences"]:  # each difference's reference side is among the highlighted lines
        value = difference["reference"]
        leaves = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()] if isinstance(value, dict) else None
        leaves = leaves or ([json.dumps(v) for v in value] if isinstance(value, list) else [json.dumps(value)])
        assert any(leaf in marked_left for leaf in leaves), (difference, marked_left)
    timeline = columns(html_report._timeline(top["reference"], top["candidate"]))
    logged = [line for call in top["reference"]["calls"] for line in call["log"]] + top["reference"]["end"]["log"]
    shown = [left for _, left, _ in timeline if left in logged]
    assert shown == logged and any(marked for marked, _, _ in timeline)


def test_strings_from_candidates_are_escaped(findings):
    _, document = findings
    hostile = copy.deepcopy(document)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    hostile["candidate"] = evil
    hostile["divergences"][0]["candidate"]["calls"][-1]["log"].append(evil)
    hostile["divergences"][0]["reproducer"] = f"print({evil!r})"
    hostile["environment"]["packages"] = {evil: evil}
    page = html_report.render(hostile)
    assert evil not in page and "<img" not in page and page.count("<script>") == 1
    assert html_report._e(evil) in page


def test_a_matrix_page_has_a_row_per_candidate_and_their_groups(findings, tmp_path):
    _, document = findings
    clean = {**copy.deepcopy(document), "candidate": "asyncio", "divergences": [], "flaky": []}
    rows = [
        matrix.Row("asyncio", clean, report_path="asyncio.json"),
        matrix.Row(MUTANT, document, report_path="mutant.json"),
        matrix.Row("rsloop", unavailable="candidate 'rsloop' is not installed <pip install rsloop>"),
    ]
    combined = matrix.build(rows, {"seed": 1, "mode": "hypothesis", "examples": 100})
    assert combined["schema"] == matrix.MATRIX_SCHEMA == 2 and combined["environment"]["packages"]
    (tmp_path / "matrix.json").write_text(matrix.dumps(combined))
    (tmp_path / "mutant.json").write_text(report.dumps(document))  # asyncio.json is missing: its groups are not shown
    loaded, reports = html_report.load(tmp_path / "matrix.json")
    assert set(reports) == {MUTANT}
    dom = parse(html_report.render(loaded, reports))
    shown = {attrs["data-candidate"]: attrs for tag, attrs, _ in dom.having("data-candidate") if tag == "tr"}
    assert list(shown) == ["asyncio", MUTANT, "rsloop"] and "data-unavailable" in shown["rsloop"]
    (total,) = dom.having("data-total-examples")
    assert total[2] == str(2 * document["examples"])
    per_row = {attrs["data-divergence-groups"]: text for _, attrs, text in dom.having("data-divergence-groups")}
    assert per_row == {"0": "0", str(len(document["divergences"])): str(len(document["divergences"]))}
    sections = [attrs["data-candidate"] for tag, attrs, _ in dom.having("data-candidate") if tag == "section"]
    assert sections.count(MUTANT) == 1 + sum(len(document[k]) for k in ("divergences", "flaky", "version_differences"))
    assert "&lt;pip install rsloop&gt;" in html_report.render(loaded, reports)


# ------------------------------------------------------------------ in a real browser


def test_the_page_renders_in_headless_chromium_with_the_json_numbers(findings, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    where, document = findings
    page = where / "Y.html"
    done = subprocess.run(
        [browser, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=2000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    dom = assert_numbers_match(done.stdout, document)
    assert any(tag == "table" and attrs.get("data-matrix") == "areas" for tag, attrs, _ in dom.elements)
    (body,) = [attrs for tag, attrs, _ in dom.elements if tag == "body"]
    assert body.get("data-js") == "ready", "the inline script (copy buttons) did not run"


def test_matrix_writes_its_page_and_each_candidates_and_report_renders_it_again(tmp_path):
    done = conformance("matrix", "asyncio", "--examples", "10", "--seed", "1", "--out", "m", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "m"
    assert (out / "asyncio.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    again = conformance("report", "m/matrix.json", "--html", "again.html", "--markdown", "again.md", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "again.html").read_bytes() == (out / "matrix.html").read_bytes()
    assert (tmp_path / "again.md").read_bytes() == (out / "matrix.md").read_bytes()
    dom = parse((out / "matrix.html").read_text(encoding="utf-8"))
    (row,) = [attrs for tag, attrs, _ in dom.having("data-candidate") if tag == "tr"]
    (examples,), (groups,) = dom.having("data-examples"), dom.having("data-divergence-groups")
    assert row["data-candidate"] == "asyncio" and examples[2] == "10" and groups[2] == "0"
