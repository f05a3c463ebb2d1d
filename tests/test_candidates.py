"""Built-in real candidates (conformance/candidates.py): the registry, ``conformance candidates``, and real runs.

Candidates are imported only in worker processes: this test process never
imports one (some patch the interpreter as they load). Where a test here loads
a candidate in-process, every module of it is blocked first, so that nothing
is imported. The real runs skip the candidates that are not installed (CI
installs only the ``test`` extra); ``pip install -e '.[candidates]'`` installs
them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from conformance import candidates, targets
from conformance.cli import EXIT_USAGE, main
from conformance.isolation import WorkerPair
from conformance.scenario import Raise, Return, Run, RunnerConfig, Scenario, Spawn, TaskGraph, TaskSpec, Yield
from conformance.targets import KINDS, TargetError

ROOT = Path(__file__).resolve().parents[1]
#: An upper bound for one short scenario, worker start-up included (PySide6 takes a while to import).
TIMEOUT = 60.0

#: The names issue 5 asks for, each a ``--candidate``.
REQUIRED = {
    "uvloop",
    "uvloop.run",
    "rloop",
    "backports",
    "taskgroup",
    "taskgroup.run",
    "anyio",
    "anyio+uvloop",
    "aiorun",
    "nest_asyncio",
    "trio-asyncio",
    "tornado",
    "asyncio-gevent",
    "qasync",
}

#: Every module a candidate may import: none of them may be loaded in the driver by these tests.
CANDIDATE_MODULES = sorted(
    {module for candidate in candidates.CANDIDATES for module in candidate.modules} | {"trio", "gevent", "PySide6"}
)

BY_NAME = {candidate.name: candidate for candidate in candidates.CANDIDATES}


def extras() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["optional-dependencies"]


def conformance(*args: str, cwd: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def is_installed(candidate: candidates.Candidate) -> bool:
    return all(version is not None for version in candidate.installed().values())


# ----------------------------------------------------------------- registry


def test_every_candidate_of_the_issue_is_a_built_in_name():
    assert REQUIRED <= set(candidates.NAMES)
    assert len(set(candidates.NAMES)) == len(candidates.NAMES)
    assert set(candidates.NAMES) <= set(targets.BUILTIN_NAMES)
    assert {"asyncio", "asyncio.run", "reference", "reference.run"} <= set(targets.BUILTIN_NAMES)


@pytest.mark.parametrize("candidate", candidates.CANDIDATES, ids=lambda c: c.name)
def test_each_entry_is_complete_and_matches_its_extra(candidate):
    assert candidate.kind in KINDS
    assert candidate.requirements and all(candidate.requirements)
    assert candidate.modules, "the modules whose absence means 'not installed'"
    assert candidate.usage, "the builder's docstring says which documented usage it follows"
    assert candidate.pip == "pip install " + " ".join(candidate.requirements)
    module, _, attr = candidate.entry.partition(":")
    assert candidate.entry == "uvloop" or (module and attr), "a MODULE:ATTR that a reproducer can import"
    extra = extras()
    assert extra[candidate.extra] == list(candidate.requirements)
    assert set(candidate.requirements) <= set(extra["candidates"])


def test_adapters_are_attributes_of_the_module_and_nothing_else_is():
    prefix = "conformance.candidates:"
    adapters = [c.entry[len(prefix) :] for c in candidates.CANDIDATES if c.entry.startswith(prefix)]
    assert len(adapters) == len(set(adapters))
    assert set(adapters) == set(candidates._BY_ENTRY)
    with pytest.raises(AttributeError):
        candidates.no_such_adapter  # noqa: B018 - the module's __getattr__ must refuse unknown names


def test_the_candidates_extra_is_every_candidate_and_nothing_unavailable():
    extra = extras()
    wanted = {r for candidate in candidates.CANDIDATES for r in candidate.requirements}
    assert set(extra["candidates"]) == wanted
    unavailable = {u.name for u in candidates.UNAVAILABLE}
    assert unavailable == {"rsloop", "zuvloop"}
    assert not unavailable & set(extra) and not unavailable & set(extra["candidates"])
    assert all(u.reason for u in candidates.UNAVAILABLE)


def test_a_known_unavailable_candidate_says_why():
    with pytest.raises(TargetError, match="glibc"):
        targets.load_target("rsloop")
    with pytest.raises(TargetError, match="unknown candidate 'no-such-thing'"):
        targets.load_target("no-such-thing")


# ------------------------------------------------------- candidates command


def test_the_candidates_command_lists_every_candidate(capsys):
    assert main(["candidates"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(candidates.NAMES) | {u.name for u in candidates.UNAVAILABLE}
    for candidate in candidates.CANDIDATES:
        row = rows[candidate.name]
        assert row.split()[1] == candidate.kind
        assert candidate.pip in row and f"runner-conformance[{candidate.extra}]" in row
        versions = [candidates.distribution_version(name) for name in candidate.distributions]
        if None in versions:
            assert "not installed" in row
        else:
            assert all(version in row for version in versions)
    for unavailable in candidates.UNAVAILABLE:
        assert unavailable.reason in rows[unavailable.name]


def test_the_candidates_command_imports_no_candidate():
    code = (
        "import sys\n"
        "from conformance.cli import main\n"
        "assert main(['candidates']) == 0\n"
        f"print('IMPORTED', sorted(m for m in {CANDIDATE_MODULES!r} if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "IMPORTED []"


# ------------------------------------------------------------ not installed


@pytest.mark.parametrize("candidate", candidates.CANDIDATES, ids=lambda c: c.name)
def test_a_candidate_that_is_not_installed_is_one_line_naming_the_pip_command(candidate, monkeypatch):
    # Blocked modules make every import of them fail: nothing is imported into this process.
    for module in CANDIDATE_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(candidates, "_BUILT", {})
    with pytest.raises(TargetError) as caught:
        targets.load_target(candidate.name)
    message = str(caught.value)
    assert message == f"candidate {candidate.name!r} is not installed ({candidate.pip})"


def test_run_with_a_candidate_that_is_not_installed_exits_2(tmp_path):
    # A stand-in package shadows rloop, installed or not, and fails as a missing one does.
    stub = tmp_path / "stub" / "rloop"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'rloop'\", name='rloop')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "stub"))
    done = conformance("run", "--candidate", "rloop", "--examples", "5", cwd=tmp_path, env=env)
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert "candidate 'rloop' is not installed (pip install rloop)" in errors[0]
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- real runs


def scenario(kind: str, *steps, debug=None) -> Scenario:
    mode = "run" if kind == "run" else "with"
    return Scenario(RunnerConfig(mode, debug, kind == "loop"), (Run(TaskGraph(tuple(TaskSpec(s) for s in steps))),))


#: Candidates whose own documentation says they ignore debug mode.
NO_DEBUG = {"rloop": "rloop's README: it does not support debugging"}


def known_broken(candidate: candidates.Candidate) -> str | None:
    """Why this candidate cannot run any scenario on this interpreter (its own doing), or None."""
    if candidate.name == "backports" and sys.version_info >= (3, 11) and candidate.version() == "1.0.0":
        return "backports.asyncio.runner 1.0.0 is for Python < 3.11: on 3.11 its Task rejects context="
    return None


@pytest.mark.parametrize("candidate", candidates.CANDIDATES, ids=lambda c: c.name)
def test_a_short_real_run_drives_the_candidate(candidate):
    if not is_installed(candidate):
        pytest.skip(f"{candidate.name} is not installed ({candidate.pip})")
    reference = "reference.run" if candidate.kind == "run" else "reference"
    returns = scenario(candidate.kind, (Yield(), Return(3)))
    raises = scenario(candidate.kind, (Raise("ValueError", "x"),), debug=True)
    leftover = scenario(candidate.kind, (Spawn(1), Return(5)), (Yield(), Return(7)), debug=False)
    with WorkerPair(reference, candidate.name) as pair:
        ready = pair.candidate.ready
        assert ready == {"spec": candidate.entry, "kind": candidate.kind, "version": candidate.version()}
        outcomes = {}
        for name, program in (("returns", returns), ("raises", raises), ("leftover", leftover)):
            _, reply = pair.check(program.to_json(), TIMEOUT)
            assert "observation" in reply, f"{candidate.name} could not run {name}: {reply}"
            (record,) = [r for r in reply["observation"]["calls"] if r["call"] == "run"]
            outcomes[name] = record
    broken = known_broken(candidate)
    if broken:
        assert outcomes["returns"]["outcome"]["raised"]["type"] == "TypeError"
        pytest.xfail(broken)
    # What main returned or raised is what the run call returned or raised (the same exception object).
    assert outcomes["returns"]["outcome"] == {"returned": 3}
    assert outcomes["leftover"]["outcome"] == {"returned": 5}
    raised = outcomes["raises"]["outcome"]["raised"]
    assert (raised["type"], raised["args"], raised.get("origin")) == ("ValueError", ["x"], "r0.t0.steps[0]")
    # Each ran on a loop of its own, in the debug mode the program asked for.
    assert outcomes["leftover"]["log"][0] == "r0.t0 start loop0 debug=False"
    if candidate.name not in NO_DEBUG:
        assert outcomes["raises"]["log"][0] == "r0.t0 start loop0 debug=True"
