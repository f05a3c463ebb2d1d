"""The reference Runner passes CPython's own Runner tests.

Each interpreter ships ``test.test_asyncio.test_runners``, the tests CPython
itself runs against ``asyncio.Runner`` and ``asyncio.run``. Here that module is
run in a subprocess of the interpreter with ``asyncio.Runner`` / ``asyncio.run``
(and ``asyncio.runners.Runner`` / ``asyncio.runners.run``) replaced by
``reference.Runner`` / ``reference.run``; the reference imitates the running
interpreter's version by default, so the interpreter's own expectations apply.

The default interpreter is ``sys.executable``. More can be listed in
``CONFORMANCE_EXTRA_PYTHONS`` (paths separated by ``:``), e.g.::

    CONFORMANCE_EXTRA_PYTHONS=$(pyenv prefix 3.12.1)/bin/python:$(pyenv prefix 3.13.0)/bin/python

An interpreter without ``test.test_asyncio.test_runners`` (a distribution that
strips the test package, or one older than 3.11) is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXTRA_PYTHONS_VARIABLE = "CONFORMANCE_EXTRA_PYTHONS"
#: Fewer tests than this means the module was not what we think it is
#: (CPython's file has 26 tests in 3.11.7, 27 in 3.12.1, 29 in 3.13.0).
MINIMUM_TESTS = 20
RESULT_MARKER = "REFERENCE-SUITE-RESULT "
TIMEOUT_SECONDS = 300

# Exit status of the probe when the interpreter has no test_runners module.
NO_SUITE = 3

PROBE = textwrap.dedent(
    """
    import sys
    try:
        import asyncio
        asyncio.Runner
        import test.test_asyncio.test_runners
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(3)
    """
)

# Runs CPython's module with the substitution in place and prints one JSON
# line with the unittest result. It also counts how many reference Runners
# were created, to prove the substitution took effect.
DRIVER = textwrap.dedent(
    """
    import asyncio
    import asyncio.runners
    import json
    import signal
    import sys
    import unittest

    import reference

    # A process started in the background inherits SIGINT ignored; the
    # interrupt tests need Python's default handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    created = []
    original_init = reference.Runner.__init__

    def counting_init(self, *args, **kwargs):
        created.append(self)
        original_init(self, *args, **kwargs)

    reference.Runner.__init__ = counting_init

    asyncio.Runner = asyncio.runners.Runner = reference.Runner
    asyncio.run = asyncio.runners.run = reference.run

    from test.test_asyncio import test_runners

    suite = unittest.defaultTestLoader.loadTestsFromModule(test_runners)
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    print("RESULT_MARKER" + json.dumps({
        "version": list(sys.version_info[:3]),
        "reference_version": list(reference.default_version()),
        "tests_run": result.testsRun,
        "failures": [test.id() for test, _ in result.failures],
        "errors": [test.id() for test, _ in result.errors],
        "unexpected_successes": [test.id() for test in result.unexpectedSuccesses],
        "skipped": [test.id() for test, _ in result.skipped],
        "successful": result.wasSuccessful(),
        "reference_runners_created": len(created),
        "asyncio_runner_is_reference": asyncio.Runner is reference.Runner,
    }))
    """
).replace("RESULT_MARKER", RESULT_MARKER)


def _interpreters():
    params = [pytest.param(sys.executable, id="default")]
    extra = os.environ.get(EXTRA_PYTHONS_VARIABLE, "")
    paths = [p for p in extra.split(os.pathsep) if p]
    if paths:
        params += [pytest.param(p, id=f"extra:{p}") for p in paths]
    else:
        params.append(
            pytest.param(
                None,
                id="extra",
                marks=pytest.mark.skip(reason=f"{EXTRA_PYTHONS_VARIABLE} is not set"),
            )
        )
    return params


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    # The suite's own warnings filters must decide; don't let ours leak in.
    env.pop("PYTHONWARNINGS", None)
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


@pytest.mark.parametrize("python", _interpreters())
def test_cpython_test_runners_pass_with_reference_substituted(python):
    """The interpreter's own test_runners module passes against reference.Runner/run."""
    probe = subprocess.run(
        [python, "-c", PROBE],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode == NO_SUITE:
        pytest.skip(f"{python}: cannot import test.test_asyncio.test_runners: {probe.stdout.strip()}")
    assert probe.returncode == 0, probe.stderr

    completed = subprocess.run(
        [python, "-c", DRIVER],
        cwd=REPO_ROOT,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert lines, f"no result from the suite (exit {completed.returncode}):\n{completed.stderr[-5000:]}"
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    report = f"{json.dumps(result, indent=1)}\n--- unittest output ---\n{completed.stderr[-8000:]}"

    assert result["asyncio_runner_is_reference"], report
    assert result["tests_run"] > MINIMUM_TESTS, report
    assert result["reference_runners_created"] > MINIMUM_TESTS, report
    assert not result["failures"], report
    assert not result["errors"], report
    assert not result["unexpected_successes"], report
    assert result["successful"], report
    assert completed.returncode == 0, report
