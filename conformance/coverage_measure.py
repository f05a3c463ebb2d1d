"""Run generated scenarios through the reference in this process, under coverage.py.

``conformance coverage`` asks two questions of the scenarios ``conformance
run`` generates: which clauses of docs/spec.md do they exercise
(``conformance.behaviours``), and which branches of ``reference/`` do they
reach. Both are about the reference, so no worker process and no candidate is
involved: each scenario goes through ``conformance.interpreter.execute`` with
the reference target, here, with coverage.py recording branches of the
``reference`` package only.

Versions. The reference imitates CPython 3.11 to 3.14 on one interpreter
(``version=``), and several of its branches choose between releases (R-1
against R14-2/R14-3, A-1, C-3). ``conformance run`` only uses the running
interpreter's version, so on any one interpreter those branches could never
be reached, however good the generator. They are behaviour that scenarios
must reach, so they are measured, not excluded: each scenario runs once per
supported version (the interpreter's own with ``version`` left unset, exactly
as in ``conformance run``; the others explicitly), and a scenario in mode
``run`` also through ``reference.run`` (the reference of ``asyncio.run``-like
candidates). A clause counts as exercised by a scenario if any of its runs
shows it. What no ``version=`` can change is the interpreter itself (a line
for 3.9/3.10 only, a loop method that takes a timeout from 3.12) and what the
harness never does (it always passes a valid version and a cancellation
order). Those lines carry a pragma that names the condition and the reason
(``PRAGMA``); a condition on the interpreter is evaluated, so such a line is
measured wherever it can run and left out elsewhere, and every line left out
is listed in the report with its reason, for a reader to check. Nothing else
is excluded: coverage.py's default ``# pragma: no cover`` is not honoured.

Isolation. The reference is our own code and runs every generated scenario
without a worker, so a scenario that makes ``execute`` raise, or that leaves
the process unfit for the next one (a running loop, a foreign SIGINT handler,
a live thread), is an internal error: it is recorded with its scenario, and a
dirty process ends the measurement. The default SIGINT handler is put back
before every run, since SIGINT steps need it and the reference installs its
own handler only over it (R-6).
"""

from __future__ import annotations

import gc
import json
import logging
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from conformance import behaviours, campaign
from conformance.scenario import Scenario

Version = Tuple[int, int]

#: The package measured.
PACKAGE = "reference"

#: A line that runs only under a condition no scenario controls, with the reason:
#: ``# pragma: py<3.11: <reason>`` / ``# pragma: py>=3.12: <reason>`` (measured
#: on interpreters where the condition holds, left out elsewhere) or
#: ``# pragma: outside harness: <reason>`` (always left out: the harness itself
#: never takes the line, whatever the scenario).
PRAGMA = re.compile(r"#\s*pragma:\s*(?P<condition>py\s*(?:<|>=)\s*3\.\d+|outside harness)\s*:\s*(?P<reason>\S.*)$")


class CoverageUnavailable(Exception):
    """coverage.py cannot be imported; the message says how to install it."""


@dataclass
class Excluded:
    """A pragma that left lines out of the measurement: where, under which condition, and why."""

    path: str
    line: int
    condition: str
    reason: str


@dataclass
class Measurement:
    """What the generated scenarios exercised: clauses per example, and the reference's coverage."""

    seed: int
    versions: Tuple[Version, ...]
    default_version: Version
    examples: int = 0
    executions: int = 0
    elapsed_s: float = 0.0
    clauses: Counter = field(default_factory=Counter)
    clause_versions: Dict[str, Set[Version]] = field(default_factory=dict)
    #: Internal errors: the reference could not run a scenario, or left the process dirty.
    errors: List[Dict[str, Any]] = field(default_factory=list)
    #: coverage.py's JSON report of the ``reference`` package (``files``, named ``reference/...``, and ``totals``).
    coverage: Dict[str, Any] = field(default_factory=dict)
    excluded: List[Excluded] = field(default_factory=list)


def measure(
    strategy: Any,
    seed: int,
    examples: Optional[int] = None,
    budget_s: Optional[float] = None,
    progress: Optional[Callable[[Measurement], None]] = None,
) -> Measurement:
    """Measure what the scenarios of ``strategy`` reach; see the module docstring.

    ``strategy`` is what a campaign takes (a Hypothesis strategy or a
    ``Fuzzer``): the scenarios come from ``campaign.generate``, exactly as
    ``conformance run`` gets them for the same seed.
    """
    try:
        import coverage
    except ImportError:
        raise CoverageUnavailable(
            "conformance coverage needs coverage.py, a dependency of this package: pip install 'coverage>=7.4'"
        ) from None
    start = time.monotonic()
    deadline = None if budget_s is None else start + budget_s
    with _FreshReference() as ref:
        cov = coverage.Coverage(branch=True, source_pkgs=[PACKAGE], data_file=None, config_file=False)
        cov.clear_exclude()
        for pattern in _exclusions(ref.directory):
            cov.exclude(pattern)
        cov.start()
        try:
            targets = ref.load()
        finally:
            cov.stop()
        versions, default = ref.versions()
        result = Measurement(seed, versions, default)
        session = _Session(cov, targets, result)

        def visit(scenario: Scenario) -> None:
            session.run(scenario)
            if progress is not None:
                progress(result)

        with _ProcessGuard():
            campaign.generate(strategy, seed, visit, examples, deadline)
        result.coverage, result.excluded = _json_report(cov, ref.directory)
    result.elapsed_s = time.monotonic() - start
    return result


class _Session:
    """Runs each scenario under every (target, version) and files the evidence."""

    def __init__(self, cov: Any, targets: Dict[Tuple[str, Version], Any], result: Measurement) -> None:
        from conformance.interpreter import execute
        from conformance.worker import Cleanliness

        self.cov = cov
        self.targets = targets
        self.result = result
        self.execute = execute
        self.cleanliness = Cleanliness()

    def run(self, scenario: Scenario) -> None:
        result = self.result
        result.examples += 1
        seen: Set[str] = set()
        for (spec, version), target in self.targets.items():
            if spec == "reference.run" and scenario.runner.mode != "run":
                continue
            observation = self._execute(scenario, spec, version, target)
            if observation is None:
                continue
            for clause in behaviours.exercised(scenario, observation, version):
                seen.add(clause)
                result.clause_versions.setdefault(clause, set()).add(version)
        result.clauses.update(seen)

    def _execute(self, scenario: Scenario, spec: str, version: Version, target: Any) -> Optional[Dict[str, Any]]:
        """One run of the reference, measured; None (and an internal error) if it failed."""
        self.result.executions += 1
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _settle_garbage()
        error: Optional[str] = None
        self.cov.start()
        try:
            observation = self.execute(scenario, target)
        except BaseException:
            observation, error = None, traceback.format_exc()
        finally:
            self.cov.stop()
        dirty = self.cleanliness.check()
        if error is not None or dirty is not None:
            self.result.errors.append(
                {
                    "scenario": scenario.to_json(),
                    "target": spec,
                    "version": ".".join(map(str, version)),
                    "error": error or "",
                    "dirty": dirty,
                }
            )
        if dirty is not None:
            raise campaign.StopGeneration
        return observation


class _FreshReference:
    """The ``reference`` package imported anew while coverage runs, and put back afterwards.

    Its module-level lines (definitions) run at import: an import made before
    the measurement started would leave them all "missing". The modules the
    process had are restored on exit, so callers keep the classes they hold.
    """

    def __enter__(self) -> _FreshReference:
        import reference

        self.directory = Path(reference.__file__).resolve().parent
        self.saved = {name: module for name, module in sys.modules.items() if _in_package(name)}
        for name in self.saved:
            del sys.modules[name]
        return self

    def load(self) -> Dict[Tuple[str, Version], Any]:
        """Import the package (under coverage) and build one target per (spec, version)."""
        import reference
        from conformance.targets import load_target

        self.module = reference
        default = reference.default_version()
        targets: Dict[Tuple[str, Version], Any] = {}
        for spec in (PACKAGE, f"{PACKAGE}.run"):
            for version in reference.SUPPORTED_VERSIONS:
                target = load_target(spec)
                # The interpreter's own version is left unset, as in ``conformance run``.
                target.options = {} if version == default else {"version": version}
                targets[(spec, version)] = target
        return targets

    def versions(self) -> Tuple[Tuple[Version, ...], Version]:
        """Read outside the measurement, so that reading them does not count as reaching them."""
        return tuple(self.module.SUPPORTED_VERSIONS), self.module.default_version()

    def __exit__(self, *exc_info: Any) -> None:
        for name in [name for name in sys.modules if _in_package(name)]:
            del sys.modules[name]
        sys.modules.update(self.saved)


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


class _ProcessGuard:
    """What the measurement changes in this process, undone when it ends.

    The SIGINT handler is put back. Frozen objects are unfrozen (see
    ``_settle_garbage``). Two kinds of output are not printed while the
    measurement runs, since they belong to no observation and in ``conformance
    run`` they go to the worker's stderr file, not to the user: exceptions
    raised by finalizers (a scenario's coroutine that ignores ``GeneratorExit``
    when it is collected), and the ``asyncio`` logger's messages (in debug
    mode, "Executing <Task ...> took 0.110 seconds", which the tracing of
    coverage.py itself provokes).
    """

    def __enter__(self) -> _ProcessGuard:
        self.handler = signal.getsignal(signal.SIGINT)
        self.unraisablehook = sys.unraisablehook
        sys.unraisablehook = _ignore_unraisable
        self.asyncio_logger = logging.getLogger("asyncio")
        self.asyncio_logger_disabled = self.asyncio_logger.disabled
        self.asyncio_logger.disabled = True
        return self

    def __exit__(self, *exc_info: Any) -> None:
        signal.signal(signal.SIGINT, self.handler)
        _settle_garbage()
        gc.unfreeze()
        sys.unraisablehook = self.unraisablehook
        self.asyncio_logger.disabled = self.asyncio_logger_disabled


def _ignore_unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook`` while measuring: see ``_ProcessGuard``."""


def _settle_garbage() -> None:
    """Collect what earlier runs left behind, then freeze everything that survives.

    The interpreter collects garbage three times per run. With this process's
    own heap (Hypothesis, coverage.py) in view, that costs tens of
    milliseconds a run; frozen, it costs next to nothing. What an earlier run
    left is collected first, so that it is neither frozen for good nor
    finalized during the next run.
    """
    gc.collect()
    gc.freeze()


def _exclusions(directory: Path) -> List[str]:
    """coverage.py exclusion regexes for the pragmas whose condition does not hold on this interpreter."""
    conditions = {
        match.group("condition")
        for path in sorted(directory.rglob("*.py"))
        for match in map(PRAGMA.search, path.read_text(encoding="utf-8").splitlines())
        if match
    }
    return [
        r"#\s*pragma:\s*" + re.escape(condition) + r"\s*:" for condition in sorted(conditions) if not _holds(condition)
    ]


def _holds(condition: str) -> bool:
    """Whether a pragma's condition holds for the running interpreter (so its line is measured)."""
    match = re.fullmatch(r"py\s*(<|>=)\s*3\.(\d+)", condition)
    if match is None:  # outside harness
        return False
    here = sys.version_info[:2]
    bound = (3, int(match.group(2)))
    return here < bound if match.group(1) == "<" else here >= bound


def _json_report(cov: Any, directory: Path) -> Tuple[Dict[str, Any], List[Excluded]]:
    """coverage.py's JSON report, files named ``reference/...``, and the pragmas that left lines out."""
    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "coverage.json"
        cov.json_report(outfile=str(path))
        report = json.loads(path.read_text(encoding="utf-8"))
    files: Dict[str, Any] = {}
    excluded: List[Excluded] = []
    for name, data in report.get("files", {}).items():
        source = Path(name) if Path(name).is_absolute() else Path.cwd() / name
        shown = _display_path(source, directory)
        files[shown] = data
        lines = source.read_text(encoding="utf-8").splitlines()
        for number in data.get("excluded_lines", []):
            match = PRAGMA.search(lines[number - 1])
            if match:  # the other excluded lines belong to the statement a pragma excludes
                excluded.append(Excluded(shown, number, match.group("condition"), match.group("reason")))
    report["files"] = dict(sorted(files.items()))
    return report, excluded


def _display_path(path: Path, directory: Path) -> str:
    """``reference/runner.py``: a measured file named from the package's parent directory."""
    try:
        return path.resolve().relative_to(directory.parent).as_posix()
    except ValueError:
        return str(path)
