"""Hypothesis's scenarios, drawn in a process of their own while the driver checks the earlier ones.

In Hypothesis mode the driver's time goes to drawing scenarios: about 2.4 ms
an example, three quarters of it in Hypothesis's engine, against about 0.35 ms
to check one (docs/performance.md). The two workers wait for the driver. A
second process that only draws, and streams each scenario to the driver as one
line of canonical JSON, runs on the core the workers leave idle: the driver
then only checks.

The drawing process runs ``campaign.generate`` with the same strategy
(``strategies.scenarios(kind)``), seed and settings as an in-process campaign,
so the same seed gives the same scenarios from one run to the next. It draws
ahead of the driver only as far as the pipe holds, and stops when the driver
closes the pipe.

``python -m conformance.drawn --kind KIND --seed N`` is the drawing process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Optional

from conformance.scenario import Scenario, loads

ROOT = Path(__file__).resolve().parent.parent


class DrawingProcessFailed(RuntimeError):
    """The drawing process ended before the driver stopped reading."""


class Drawn:
    """A scenario source for ``campaign.generate``: ``strategies.scenarios(kind)``, drawn in a subprocess."""

    def __init__(self, kind: str = "runner") -> None:
        self.kind = kind

    def scenarios(self, seed: int) -> Iterator[Scenario]:
        """An endless stream of scenarios, the same for the same seed; the process ends with the stream."""
        command = [sys.executable, "-m", "conformance.drawn", "--kind", self.kind, "--seed", str(seed)]
        # This package and the strategies, importable as they are here (installed or not).
        paths = [str(ROOT)] + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                yield loads(line.decode("ascii"), "<drawing process>")
            status = process.wait()
            raise DrawingProcessFailed(f"the process drawing scenarios ended early, with status {status}")
        finally:
            process.stdout.close()
            if process.poll() is None:
                process.kill()
            process.wait()


def main(argv: Optional[List[str]] = None) -> int:
    from conformance.campaign import StopGeneration, generate
    from strategies import scenarios

    parser = argparse.ArgumentParser(prog="python -m conformance.drawn", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kind", default="runner", choices=("runner", "run", "loop"))
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    out = sys.stdout.buffer

    def send(scenario: Scenario) -> None:
        try:
            out.write(scenario.dumps().encode("ascii") + b"\n")
            out.flush()  # one scenario at a time: the driver starts checking at once
        except (BrokenPipeError, ValueError):  # the driver stopped reading
            raise StopGeneration from None

    generate(scenarios(args.kind), args.seed, send)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
