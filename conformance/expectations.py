"""Expectations: the divergences a candidate is known to have, so that CI fails only on new ones.

A candidate that is not (yet) conformant still deserves a CI gate: one that
passes while it shows only its known divergences and fails the day it shows a
new one. The known ones are listed in a TOML file per candidate::

    candidate = "uvloop"

    [[expected]]
    clause = "R-9"                  # required: the group's clause ("-" for HANG and CRASH)
    signature = "R-9 result"        # optional: the group's signature (clause and category)
    category = "result"             # optional: the group's category
    status = "FAIL"                 # FAIL (a divergence), HANG, CRASH or FLAKY
    python = ">=3.12"               # optional: ">=3.12", "<3.13", ">=3.11,<3.13", "3.12", or a list ["3.11", "3.12"]
    os = "Linux"                    # optional: a platform.system() value, or a list of them
    reason = "uvloop does not ..."  # why; ``update`` writes "TODO: explain"
    link = "https://github.com/..." # optional: the upstream issue

``Expectations.gate`` judges a findings document (``conformance run --json``)
against the file, for one Python version and OS: every *finding* (each group of
``divergences``, whose status is its category when that is HANG or CRASH and
FAIL otherwise, and each group of ``flaky``, status FLAKY) is *expected* if an
entry that applies here matches it, and *new* otherwise. An entry that applies
here and matches no finding is *stale*: the candidate was fixed, or the
generator no longer reaches the behaviour. A FLAKY entry is never stale, since
a flaky behaviour need not show on every run; and it also matches a
divergence group of its signature, since a flaky scenario may diverge the same
way on all its re-runs once in a while. Version differences are not findings.

The gate passes when nothing is new. Stale entries are reported (printed, and
listed in the findings JSON) but do not fail it, because a run with a smaller
budget may just not have reached them; ``passed_strictly`` (the command line's
``--strict-expectations``) also requires that nothing is stale.

The public API, which the pytest plugin also uses: ``load(path)``,
``Expectations.gate(document, python, system) -> Gate``, ``dump(expectations)``
and ``update(existing, document)``. Every problem with a file raises
``ExpectationsError``, whose message names the file and the entry.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import tomllib

STATUSES = ("FAIL", "HANG", "CRASH", "FLAKY")
#: Categories that are an outcome of the candidate's process, and the status that expects them.
OUTCOMES = ("HANG", "CRASH")
#: What ``update`` writes as the reason of an entry it adds, for a person to replace.
TODO_REASON = "TODO: explain"
#: Keys of an ``[[expected]]`` table, in the order ``dump`` writes them.
ENTRY_KEYS = ("clause", "signature", "category", "status", "python", "os", "reason", "link")
TOP_LEVEL_KEYS = ("candidate", "expected")
_VERSION_TEST = re.compile(r"^\s*(>=|<=|==|!=|>|<)?\s*(\d+(?:\.\d+){0,2})\s*$")


class ExpectationsError(Exception):
    """An expectations file cannot be used; the message names the file and the entry."""


# ------------------------------------------------------------------ the model


@dataclass(frozen=True)
class Expectation:
    """One known divergence: which group it is, where it applies, and why it is accepted."""

    clause: str
    status: str
    signature: Optional[str] = None
    category: Optional[str] = None
    #: Python versions it applies to: None (all), a list of versions, or one specifier string.
    python: Union[str, Tuple[str, ...], None] = None
    #: ``platform.system()`` values it applies to (None: every OS).
    os: Optional[Tuple[str, ...]] = None
    reason: str = ""
    link: Optional[str] = None

    def applies(self, python: str, system: str) -> bool:
        """Whether the entry applies to a run under this Python version and OS."""
        if self.os is not None and system.lower() not in {name.lower() for name in self.os}:
            return False
        if self.python is None:
            return True
        if isinstance(self.python, str):
            return all(_version_holds(test, python) for test in self.python.split(","))
        return any(_version_holds("==" + version, python) for version in self.python)

    def matches(self, finding: Dict[str, Any]) -> bool:
        """Whether ``finding`` (see ``findings``) is the group this entry describes."""
        statuses = (self.status,) if self.status != "FLAKY" else ("FLAKY", "FAIL", *OUTCOMES)
        if finding["status"] not in statuses or finding["clause"] != self.clause:
            return False
        if self.category is not None and finding["category"] != self.category:
            return False
        return self.signature is None or finding["signature"] == self.signature

    def to_json(self) -> Dict[str, Any]:
        fields = {key: getattr(self, key) for key in ENTRY_KEYS}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items() if value}


@dataclass(frozen=True)
class Gate:
    """A findings document judged against expectations: what was expected, what is new, what is stale."""

    #: Findings an entry matched, each with that entry under ``"expectation"``.
    expected: List[Dict[str, Any]]
    #: Findings no applicable entry matched: they fail the gate.
    new: List[Dict[str, Any]]
    #: Entries that apply here (not FLAKY) and matched no finding.
    stale: List[Expectation]
    python: str = ""
    system: str = ""

    @property
    def passed(self) -> bool:
        """Nothing new (stale entries are reported, not failed on: see the module docstring)."""
        return not self.new

    @property
    def passed_strictly(self) -> bool:
        """Nothing new and nothing stale (``--strict-expectations``)."""
        return not self.new and not self.stale

    def to_json(self) -> Dict[str, Any]:
        """What the findings JSON gets under ``"expectations"``."""
        return {
            "python": self.python,
            "system": self.system,
            "passed": self.passed,
            "passed_strictly": self.passed_strictly,
            "expected": self.expected,
            "new": self.new,
            "stale": [entry.to_json() for entry in self.stale],
        }

    def summary(self) -> str:
        """Lines for the terminal: one per new and per stale entry, then the verdict."""
        lines = [f"NEW       {_describe(finding)}" for finding in self.new]
        lines += [f"STALE     {_describe(entry.to_json())}: no longer happens here" for entry in self.stale]
        verdict = "passed" if self.passed else "FAILED"
        lines.append(
            f"expectations {verdict}: {len(self.expected)} expected, {len(self.new)} new, {len(self.stale)} stale "
            f"(Python {self.python}, {self.system})"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class Expectations:
    """The entries of one file (``source`` names it in messages), and the candidate they are for."""

    entries: Tuple[Expectation, ...] = ()
    candidate: Optional[str] = None
    source: str = "<expectations>"

    def gate(self, findings_document: Dict[str, Any], python: str, system: str) -> Gate:
        """Judge a findings document (``conformance run --json``) for a run under ``python`` and ``system``."""
        applicable = [entry for entry in self.entries if entry.applies(python, system)]
        expected: List[Dict[str, Any]] = []
        new: List[Dict[str, Any]] = []
        used = set()
        for finding in findings(findings_document):
            entry = next((entry for entry in applicable if entry.matches(finding)), None)
            if entry is None:
                new.append(finding)
                continue
            used.add(entry)
            expected.append({**finding, "expectation": entry.to_json()})
        stale = [entry for entry in applicable if entry not in used and entry.status != "FLAKY"]
        return Gate(expected, new, _unique(stale), python, system)


def _unique(entries: Iterable[Expectation]) -> List[Expectation]:
    seen: List[Expectation] = []
    for entry in entries:
        if entry not in seen:
            seen.append(entry)
    return seen


def findings(document: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The findings of a findings document: clause, category, signature, status and count of each group."""
    found = []
    for key, flaky in (("divergences", False), ("flaky", True)):
        for group in document.get(key) or []:
            category = group.get("category", "")
            status = "FLAKY" if flaky else category if category in OUTCOMES else "FAIL"
            found.append(
                {
                    "clause": group.get("clause", ""),
                    "category": category,
                    "signature": group.get("signature") or f"{group.get('clause', '')} {category}",
                    "status": status,
                    "count": group.get("count", 0),
                }
            )
    return found


def python_of(document: Dict[str, Any]) -> str:
    """The Python version the candidate ran under, as a findings document records it (else this driver's)."""
    info = document.get("candidate_info") or {}
    return str(info.get("python") or platform.python_version())


def system_of(document: Dict[str, Any]) -> str:
    """The OS of the run, as a findings document records it (else this machine's)."""
    return str((document.get("environment") or {}).get("platform") or platform.system())


def _describe(finding: Dict[str, Any]) -> str:
    count = f", {finding['count']} scenario(s)" if finding.get("count") else ""
    name = finding.get("signature") or finding["clause"]
    return f"{finding['status']:5} {name}{count}"


def _version_holds(test: str, python: str) -> bool:
    """``python`` ("3.12.1") against one test (">=3.12"), compared on as many parts as the test gives."""
    match = _VERSION_TEST.match(test)
    if match is None:  # load() has checked every test already
        raise ValueError(test)
    operator, wanted = match.group(1) or "==", tuple(int(part) for part in match.group(2).split("."))
    actual = tuple(int(part) for part in re.findall(r"\d+", python)[: len(wanted)])
    return {
        ">=": actual >= wanted,
        "<=": actual <= wanted,
        "==": actual == wanted,
        "!=": actual != wanted,
        ">": actual > wanted,
        "<": actual < wanted,
    }[operator]


# ------------------------------------------------------------------- reading


def load(path: Union[str, Path]) -> Expectations:
    """Read and validate an expectations file; raises ``ExpectationsError`` naming the file and entry."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExpectationsError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ExpectationsError(f"{source}: not UTF-8 text") from None
    return loads(text, source)


def loads(text: str, source: str = "<expectations>") -> Expectations:
    """Parse and validate the text of an expectations file (``source`` names it in messages)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ExpectationsError(f"{source}: unknown top-level key(s) {', '.join(unknown)} (known: candidate, expected)")
    candidate = raw.get("candidate")
    if candidate is not None and not isinstance(candidate, str):
        raise ExpectationsError(f"{source}: 'candidate' must be a string")
    tables = raw.get("expected", [])
    if not isinstance(tables, list):
        raise ExpectationsError(f"{source}: 'expected' must be an array of tables: write [[expected]]")
    entries = tuple(_entry(table, f"{source}: [[expected]] #{index}") for index, table in enumerate(tables, 1))
    return Expectations(entries, candidate, source)


def _entry(table: Any, where: str) -> Expectation:
    """One ``[[expected]]`` table, validated; ``where`` names it in messages."""
    if not isinstance(table, dict):
        raise ExpectationsError(f"{where}: must be a table")
    if isinstance(table.get("clause"), str):
        where = f"{where} (clause {table['clause']})"
    unknown = sorted(set(table) - set(ENTRY_KEYS))
    if unknown:
        raise ExpectationsError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(ENTRY_KEYS)})")
    for key in ("clause", "status"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise ExpectationsError(f"{where}: '{key}' is required and must be a non-empty string")
    if table["status"] not in STATUSES:
        raise ExpectationsError(f"{where}: status {table['status']!r} is not one of {', '.join(STATUSES)}")
    for key in ("signature", "category", "reason", "link"):
        if key in table and not isinstance(table[key], str):
            raise ExpectationsError(f"{where}: '{key}' must be a string")
    return Expectation(
        clause=table["clause"],
        status=table["status"],
        signature=table.get("signature"),
        category=table.get("category"),
        python=_python(table.get("python"), where),
        os=_names(table.get("os"), where),
        reason=table.get("reason", ""),
        link=table.get("link"),
    )


def _python(value: Any, where: str) -> Union[str, Tuple[str, ...], None]:
    """A version specifier (">=3.12", ">=3.11,<3.13") or a list of versions ("3.11", "3.12.4")."""
    if value is None:
        return None
    tests = value.split(",") if isinstance(value, str) else value
    plain_list = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if not (isinstance(value, str) or plain_list) or not tests:
        raise ExpectationsError(f'{where}: \'python\' must be a string like ">=3.12" or a list like ["3.11"]')
    for test in tests:
        match = _VERSION_TEST.match(test)
        if match is None or (plain_list and match.group(1)):
            raise ExpectationsError(f"{where}: python {test!r} is not a version (3.12) or a test (>=3.12, <3.13)")
    return value.strip() if isinstance(value, str) else tuple(item.strip() for item in value)


def _names(value: Any, where: str) -> Optional[Tuple[str, ...]]:
    """``os``: one ``platform.system()`` value or a list of them."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(name, str) and name for name in names):
        raise ExpectationsError(f"{where}: 'os' must be a platform.system() value like \"Linux\", or a list of them")
    return tuple(names)


# ------------------------------------------------------------------- writing


def dump(expectations: Expectations) -> str:
    """The file's text: ``candidate``, then one ``[[expected]]`` table per entry, keys in a fixed order."""
    lines = ["# Known divergences; see 'Gating CI on expectations' in README.md.", ""]
    if expectations.candidate is not None:
        lines += [f"candidate = {_string(expectations.candidate)}", ""]
    for entry in expectations.entries:
        lines.append("[[expected]]")
        for key, value in entry.to_json().items():
            lines.append(f"{key} = {_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_string(item) for item in value) + "]"
    return _string(value)


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, once non-ASCII is left as it is."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def update(existing: Optional[Expectations], findings_document: Dict[str, Any]) -> Expectations:
    """The expectations that describe this findings document, for a person to review.

    Entries of ``existing`` that match a finding are kept as they are (reason
    and link included); so are those that do not apply to the run's Python
    version and OS (nothing here says whether they still hold) and FLAKY
    ones. Entries that apply and match nothing (stale) are dropped. Every
    finding no entry matched gets a new entry, its reason ``TODO_REASON``.
    """
    existing = existing or Expectations()
    python, system = python_of(findings_document), system_of(findings_document)
    gate = existing.gate(findings_document, python, system)
    stale = set(gate.stale)
    kept = [entry for entry in existing.entries if entry not in stale]
    added = [_new_entry(finding) for finding in gate.new]
    candidate = existing.candidate or findings_document.get("candidate")
    return Expectations(tuple(kept) + tuple(_unique(added)), candidate, existing.source)


def _new_entry(finding: Dict[str, Any]) -> Expectation:
    return Expectation(
        clause=finding["clause"],
        status=finding["status"],
        signature=finding["signature"],
        reason=TODO_REASON,
    )


def read_findings(path: Union[str, Path]) -> Dict[str, Any]:
    """A findings JSON (``conformance run --json``); raises ``ExpectationsError`` if it is not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExpectationsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExpectationsError(f"{path}: not a findings JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("divergences"), list):
        raise ExpectationsError(f"{path}: not a findings JSON (no 'divergences' list)")
    return document


__all__ = [
    "ENTRY_KEYS",
    "STATUSES",
    "TODO_REASON",
    "Expectation",
    "Expectations",
    "ExpectationsError",
    "Gate",
    "dump",
    "findings",
    "load",
    "loads",
    "python_of",
    "read_findings",
    "system_of",
    "update",
]
