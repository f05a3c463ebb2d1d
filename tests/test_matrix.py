"""The matrix report: cells per spec area, computed from ordinary campaign reports."""

from __future__ import annotations

from conformance import matrix


def report(divergences=(), exercised=None, candidate="x"):
    return {
        "candidate": candidate,
        "candidate_info": {"spec": candidate, "kind": "loop", "version": "1.0", "python": "3.11.7"},
        "reference": "reference",
        "examples": 100,
        "statuses": {"same": 90, "diverged": 10},
        "clauses_exercised": exercised if exercised is not None else {"K-1": 40, "K-2": 5, "R-1": 7, "R14-2": 3},
        "divergences": [
            {"clause": clause, "category": category, "count": count} for clause, category, count in divergences
        ],
        "flaky": [],
    }


def test_areas_come_from_the_spec_headings():
    letters = [letter for letter, _ in matrix.areas()]
    assert letters == ["I", "L", "E", "C", "G", "R", "S", "A", "K"]
    assert dict(matrix.areas())["K"].startswith("Cancelling leftover tasks")


def test_cells_count_exercised_scenarios_and_divergences_per_area():
    letters = [letter for letter, _ in matrix.areas()]
    cells = matrix.cells(report([("K-1", "leftover tasks", 6), ("K-3", "cleanup", 2), ("-", "HANG", 1)]), letters)
    assert cells["K"] == {"state": "diverging", "groups": 2, "scenarios": 8, "exercised": 45}
    assert cells["R"] == {"state": "conforming", "groups": 0, "scenarios": 0, "exercised": 10}
    assert cells["S"]["state"] == "not exercised"
    assert cells["HANG"] == {"state": "diverging", "groups": 1, "scenarios": 1}
    assert cells["CRASH"] == {"state": "conforming", "groups": 0, "scenarios": 0}


def test_the_document_keeps_unavailable_candidates_as_rows_and_renders_every_cell():
    rows = [
        matrix.Row("uvloop", report([("R-9", "result", 3)], candidate="uvloop"), report_path="reports/m/uvloop.json"),
        matrix.Row("rloop", unavailable="candidate 'rloop' is not installed (pip install rloop)"),
    ]
    document = matrix.build(rows, {"seed": 1, "mode": "hypothesis", "budget_s": 30})
    assert [row["candidate"] for row in document["rows"]] == ["uvloop", "rloop"]
    assert document["rows"][1] == {"candidate": "rloop", "unavailable": rows[1].unavailable}
    text = matrix.markdown(document)
    uvloop_line = next(line for line in text.splitlines() if line.startswith("| `uvloop`"))
    assert uvloop_line.count("|") == 4 + 9 + 2 + 1
    assert "❌ 1/3" in uvloop_line and "✅ 45" in uvloop_line
    assert "`rloop`: candidate 'rloop' is not installed" in text
