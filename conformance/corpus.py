"""The regression corpus: shrunk scenarios kept as files, replayed on every change.

A divergence found once should be checked forever, cheaply: ``conformance
corpus add DIR FILE...`` stores scenarios (a scenario file, or the smallest
scenario of each divergence group of a findings JSON) in DIR as canonical JSON
(``Scenario.dumps()``: the same scenario gives the same bytes whatever the
Python version), one file per scenario, named by a short hash of its content,
so that adding the same scenario twice stores it once. ``conformance replay
DIR`` replays every ``*.json`` in DIR, sorted by name.

The corpus shipped in ``conformance/shipped_corpus/`` (``SHIPPED``; package data, so a
wheel install has it too) is built, not
hand-picked: ``python -m conformance.corpus build conformance/shipped_corpus/`` generates
scenarios with a fixed seed, asks the reference which spec clauses each one
exercises (``conformance.behaviours.exercised``, under every CPython release
the reference imitates, as ``conformance coverage`` does) and keeps a small
set that exercises every clause any of them does (greedy set cover, smallest
scenarios first). The same seed and examples always give the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from conformance.scenario import Scenario, ScenarioError, load_file

#: The corpus that ships with the package (package data; see the module docstring).
SHIPPED = Path(__file__).resolve().parent / "shipped_corpus"
#: Hex digits of the content hash in a corpus file's name: enough to never collide in a corpus.
HASH_DIGITS = 12
#: What ``build`` generates by default: the fuzzer, seed and count the shipped corpus was built with.
DEFAULT_MODE, DEFAULT_SEED, DEFAULT_EXAMPLES = "hypothesis", 1, 1000
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class CorpusError(ScenarioError):
    """A corpus directory or name the user gave is unusable; the message says which and why."""


# ------------------------------------------------------------------ storing


def content_hash(scenario: Scenario) -> str:
    """The short hash a stored scenario is named by: of its canonical text, so it is the same on every Python."""
    return hashlib.sha256(scenario.dumps().encode("utf-8")).hexdigest()[:HASH_DIGITS]


def file_name(scenario: Scenario, name: Optional[str] = None) -> str:
    """``NAME-HASH.json`` or ``HASH.json``: the hash keeps names unique, the name says what it is for."""
    digest = content_hash(scenario)
    return f"{name}-{digest}.json" if name else f"{digest}.json"


def add(directory: Path, files: Sequence[str], name: Optional[str] = None) -> List[Tuple[Path, bool]]:
    """Store every scenario of ``files`` in ``directory``; return (path, newly written) for each.

    A scenario already stored (a file whose name ends in its hash, whatever
    its name) is not written again, so adding twice is idempotent.
    """
    if name is not None and not _NAME.match(name):
        raise CorpusError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
    scenarios = [scenario for path in files for scenario in load_file(path)]
    directory.mkdir(parents=True, exist_ok=True)
    stored = {_hash_of(path): path for path in directory.glob("*.json")}
    added: List[Tuple[Path, bool]] = []
    for scenario in scenarios:
        digest = content_hash(scenario)
        if digest in stored:
            added.append((stored[digest], False))
            continue
        path = directory / file_name(scenario, name)
        path.write_text(scenario.dumps() + "\n", encoding="utf-8")
        stored[digest] = path
        added.append((path, True))
    return added


def _hash_of(path: Path) -> str:
    return path.stem.rsplit("-", 1)[-1]


def files(directory: Path) -> List[Path]:
    """The corpus files of ``directory``, in the order they are replayed (sorted by name)."""
    if not directory.is_dir():
        raise CorpusError(f"{directory}: not a directory")
    found = sorted(directory.glob("*.json"))
    if not found:  # a CI job pointed at the wrong directory must not pass by replaying nothing
        raise CorpusError(f"{directory}: no *.json scenario files")
    return found


def load(directory: Path) -> List[Scenario]:
    """Every scenario of a corpus directory (a file may hold one scenario, a list, or findings)."""
    return [scenario for path in files(directory) for scenario in load_file(str(path))]


# ----------------------------------------------------------------- clauses


def clauses_of(scenarios: Iterable[Scenario]) -> List[Set[str]]:
    """For each scenario, the clauses it exercises under any release the reference imitates.

    Runs the reference in this process, as ``conformance coverage`` does (but
    without measuring line coverage): ``reference`` for every scenario and
    ``reference.run`` for those in mode ``run``, once per supported version.
    """
    from conformance import behaviours
    from conformance.coverage_measure import _ProcessGuard, _settle_garbage
    from conformance.interpreter import execute

    targets = _reference_targets()
    found: List[Set[str]] = []
    # Scenarios leave never-awaited coroutines behind on purpose: their warnings are not for the user.
    with _ProcessGuard(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for scenario in scenarios:
            seen: Set[str] = set()
            for (spec, version), target in targets.items():
                if spec == "reference.run" and scenario.runner.mode != "run":
                    continue
                signal.signal(signal.SIGINT, signal.default_int_handler)
                _settle_garbage()
                seen |= behaviours.exercised(scenario, execute(scenario, target), version)
            found.append(seen)
    return found


def _reference_targets() -> Dict[Tuple[str, Tuple[int, int]], Any]:
    """One reference target per (spec, imitated version), the interpreter's own version left unset."""
    import reference
    from conformance.targets import load_target

    default = reference.default_version()
    targets: Dict[Tuple[str, Tuple[int, int]], Any] = {}
    for spec in ("reference", "reference.run"):
        for version in reference.SUPPORTED_VERSIONS:
            target = load_target(spec)
            target.options = {} if version == default else {"version": version}
            targets[(spec, version)] = target
    return targets


def applicable_clauses(spec: Optional[Path] = None) -> List[str]:
    """The spec's clauses a scenario can exercise (``conformance.clauses``), in the spec's order."""
    from conformance.clauses import NOT_APPLICABLE, clause_ids

    return [clause for clause in clause_ids(spec) if clause not in NOT_APPLICABLE]


# ------------------------------------------------------------------ building


def select(candidates: Sequence[Tuple[Scenario, Set[str]]]) -> List[Tuple[Scenario, Set[str]]]:
    """A small subset exercising every clause any candidate does: greedy set cover.

    Each round takes the scenario adding the most clauses not yet covered,
    ties broken by size, then by canonical text, so the choice is deterministic.
    """
    wanted = set().union(*(clauses for _, clauses in candidates)) if candidates else set()
    chosen: List[Tuple[Scenario, Set[str]]] = []
    covered: Set[str] = set()
    while covered != wanted:
        best = min(candidates, key=lambda item: (-len(item[1] - covered), item[0].size(), item[0].dumps()))
        chosen.append(best)
        covered |= best[1]
    return chosen


def generated(mode: str, seed: int, examples: int) -> List[Scenario]:
    """The scenarios ``conformance run --mode MODE --seed SEED --examples N`` checks (duplicates dropped)."""
    from conformance.campaign import generate
    from conformance.fuzz import Fuzzer

    if mode == "fuzz":
        source: Any = Fuzzer("runner")
    else:
        from strategies import scenarios as source_of

        source = source_of("runner")
    made: Dict[str, Scenario] = {}
    generate(source, seed, lambda scenario: made.setdefault(scenario.dumps(), scenario), examples)
    return list(made.values())


def build(
    directory: Path, mode: str = DEFAULT_MODE, seed: int = DEFAULT_SEED, examples: int = DEFAULT_EXAMPLES
) -> Tuple[List[Path], Set[str]]:
    """Replace the ``*.json`` of ``directory`` by a covering selection of generated scenarios.

    Returns the files written and the clauses they exercise. Files added by
    ``corpus add`` are replaced too: a build is for the shipped corpus.
    """
    scenarios = generated(mode, seed, examples)
    chosen = select(list(zip(scenarios, clauses_of(scenarios))))
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    written = []
    for scenario, _ in chosen:
        path = directory / file_name(scenario)
        path.write_text(scenario.dumps() + "\n", encoding="utf-8")
        written.append(path)
    return sorted(written), set().union(*(clauses for _, clauses in chosen)) if chosen else set()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m conformance.corpus build DIR``: (re)build the shipped corpus; exit 1 if a clause is left out."""
    parser = argparse.ArgumentParser(prog="python -m conformance.corpus")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="select generated scenarios covering every clause they exercise")
    make.add_argument("directory", type=Path)
    make.add_argument("--mode", choices=("fuzz", "hypothesis"), default=DEFAULT_MODE)
    make.add_argument("--seed", type=int, default=DEFAULT_SEED)
    make.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES)
    args = parser.parse_args(argv)
    written, covered = build(args.directory, args.mode, args.seed, args.examples)
    missing = [clause for clause in applicable_clauses() if clause not in covered]
    print(f"wrote {len(written)} scenario(s) to {args.directory}, exercising {len(covered)} clause(s)")
    if missing:
        print(f"not exercised by any generated scenario: {' '.join(missing)}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "CorpusError",
    "add",
    "applicable_clauses",
    "build",
    "clauses_of",
    "content_hash",
    "file_name",
    "files",
    "generated",
    "load",
    "select",
]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
