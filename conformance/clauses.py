"""The clauses of docs/spec.md, and the few that no differential scenario can exercise.

The list of clause IDs is read from the spec itself (the first cell of every
row of a table whose header starts with ``ID``), never copied into code: a
clause added to the spec is then counted as "not exercised" until a rule in
``conformance.behaviours`` gives evidence for it, instead of being silently
left out of every coverage count.

``NOT_APPLICABLE`` is the one place that says which clauses a differential
scenario cannot exercise, and why. Everything else in the spec is expected to
be reached by generated scenarios; a clause listed here that the spec no
longer has is an error, so the list cannot rot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional

#: docs/spec.md of the source tree this package was loaded from.
DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"

#: Clause ID → why no differential scenario can exercise it. Each reason says
#: what the clause is about and where it is checked instead.
NOT_APPLICABLE: Dict[str, str] = {
    "I-3": "subclassing is a property of the class, not of a program run: a scenario drives the candidate "
    "as given (tests/test_reference_clauses.py: test_I3_subclassing_works)",
    "C-5": "the context and interrupt count a closed runner keeps are private state with no observable effect "
    "(docs/spec.md, 'Not checked directly')",
    "R-16": "how often repr() is called on the main task's result is the interpreter's signal module's doing and "
    "is left unspecified, so the harness must not compare it (test_R16_result_repr_calls_match_cpython)",
    "R14-1": "documentation only (the docstring of run() in 3.14)",
    "A-5": "documentation only (the docstring of asyncio.run() in 3.12 and 3.13)",
}

_ROW = re.compile(r"^\|\s*([^|]*?)\s*\|")
_CLAUSE_ID = re.compile(r"^[A-Z]+\d*-\d+$")


class SpecError(Exception):
    """The spec cannot be read or does not match ``NOT_APPLICABLE``; the message is for the user."""


def clause_ids(spec: Optional[Path] = None) -> List[str]:
    """Every clause ID of the spec, in the order the spec gives them."""
    path = spec or DEFAULT_SPEC
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    ids: List[str] = []
    in_clause_table = False
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None:
            in_clause_table = False
            continue
        first = match.group(1)
        if first == "ID":
            in_clause_table = True
        elif in_clause_table and _CLAUSE_ID.match(first) and first not in ids:
            ids.append(first)
    if not ids:
        raise SpecError(f"{path} has no clause table (a table whose first column is 'ID')")
    stale = sorted(set(NOT_APPLICABLE) - set(ids))
    if stale:
        raise SpecError(f"conformance.clauses.NOT_APPLICABLE names clauses {path} does not have: {', '.join(stale)}")
    return ids
