"""The pytest plugin as a new user meets it: a toy project, its own virtualenv, its own pytest run.

The toy project has a runner with a plausible bug (``close()`` forgets to
cancel the tasks left over), a test of its own, and nothing of ours but the
installed package. Its CI runs ``pytest --conformance-candidate=...``: the run
must fail naming the clause, the minimal scenario and the reproducer; once the
divergences are written down as expectations (``conformance expectations
update`` from the run's findings) the run is green; once the runner is fixed
the expectations are reported stale. The virtualenv reuses the installed
pytest and Hypothesis (``--system-site-packages``) and gets this repository
with ``pip install --no-deps -e``, as a developer would; the entry point
``pytest11`` is what loads the plugin, nothing is passed with ``-p``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[1]

BROKEN_RUNNER = '''\
"""The toy project's runner: asyncio.Runner with one change to close()."""
import asyncio
from asyncio import runners


class ToyRunner(asyncio.Runner):
    def close(self):
        if self._state is not runners._State.INITIALIZED:
            return
        loop = self._loop
        try:
            # BUG: the leftover tasks are never cancelled (asyncio cancels and drains them here).
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            if self._set_event_loop:
                asyncio.set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = runners._State.CLOSED
'''
FIXED_RUNNER = BROKEN_RUNNER.replace(
    "            # BUG: the leftover tasks are never cancelled (asyncio cancels and drains them here).\n",
    "            runners._cancel_all_tasks(loop)\n",
)
OWN_TEST = """\
from toyrunner import ToyRunner


def test_runs_a_coroutine():
    async def main():
        return 42

    with ToyRunner() as runner:
        assert runner.run(main()) == 42
"""
#: A fixed number of scenarios (and a budget that leaves room for it): the same findings on every run.
PLUGIN_ARGS = [
    "--conformance-candidate=toyrunner:ToyRunner",
    "--conformance-seed=0",
    "--conformance-examples=100",
    "--conformance-budget=30",
    "-p",
    "no:cacheprovider",
    "-rfEsxX",
]


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with this repository installed in it (editable, its dependencies from the system)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "toyrunner.py").write_text(BROKEN_RUNNER)
    (root / "tests").mkdir()
    (root / "tests" / "test_toyrunner.py").write_text(OWN_TEST)
    return root


def _pytest(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    """The toy project's CI step, from its own directory, with a clean environment (no PYTHONPATH to us)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PYTEST", "HYPOTHESIS"))}
    return subprocess.run(
        [str(python), "-m", "pytest", *PLUGIN_ARGS, *args, "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _conformance(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "conformance", *args], cwd=project, capture_output=True, text=True)


def _lines(result: subprocess.CompletedProcess) -> List[str]:
    return (result.stdout + result.stderr).splitlines()


@pytest.mark.slow
def test_a_new_user_fails_then_gates_on_expectations_then_sees_them_stale(venv_python: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "toy")

    # 1. The broken runner fails the run: clause, minimal scenario and reproducer are named.
    failing = _pytest(venv_python, project, "--junitxml=junit.xml")
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert "FAILED conformance::fuzz" in output, output
    assert "clause K-1 (leftover tasks)" in output, output
    assert "minimal scenario: {" in output, output
    reproducers = sorted((project / "reports" / "conformance" / "reproducers").glob("fuzz-K-1*.py"))
    assert reproducers and f"reproducer: {reproducers[0]}" in output
    assert "FAILED tests/" not in output  # the project's own test still passes
    junit = (project / "junit.xml").read_text()
    for name, value in (("conformance_candidate", "toyrunner:ToyRunner"), ("conformance_seed", "0")):
        assert f'<property name="{name}" value="{value}"' in junit, junit[:2000]
    assert 'name="version_hypothesis"' in junit and 'name="python"' in junit

    # The reproducer is a standalone script: it shows the divergence without the plugin.
    reproduced = subprocess.run([str(venv_python), str(reproducers[0])], cwd=project, capture_output=True, text=True)
    assert "The two traces differ" in reproduced.stdout, reproduced.stdout[-2000:]

    # 2. The known divergences go into an expectations file: the same run is green.
    findings = project / "reports" / "conformance" / "findings.json"
    update = _conformance(venv_python, project, "expectations", "update", "--from", str(findings), "--out", "exp.toml")
    assert update.returncode == 0, update.stdout + update.stderr
    assert 'signature = "K-1 leftover tasks"' in (project / "exp.toml").read_text()
    gated = _pytest(venv_python, project, "--conformance-expectations=exp.toml")
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "XFAIL conformance::fuzz - expected by exp.toml: K-1 leftover tasks" in gated.stdout, gated.stdout
    assert "STALE" not in gated.stdout

    # 3. The runner is fixed: still green, and the expectations are reported stale.
    (project / "toyrunner.py").write_text(FIXED_RUNNER)
    fixed = _pytest(venv_python, project, "--conformance-expectations=exp.toml")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "STALE expectation FAIL K-1 leftover tasks" in fixed.stdout, fixed.stdout
    assert "xfail" not in fixed.stdout.lower().split("short test summary")[-1]
    strict = _pytest(venv_python, project, "--conformance-expectations=exp.toml", "--conformance-strict-expectations")
    assert strict.returncode == 1, strict.stdout


@pytest.mark.slow
def test_the_installed_plugin_is_inert_without_a_candidate(venv_python: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "toy")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PYTEST"))}
    plain = subprocess.run(
        [str(venv_python), "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "conformance::" not in plain.stdout
    assert "1 test collected" in plain.stdout, plain.stdout
    assert not (project / "reports").exists()
