"""Time to catch each broken runner of the self-test set, in fuzz mode and in Hypothesis mode.

    python3 benchmarks/catch_time.py [--budget 10] [--seed 1] [--mutant NAME ...] [--all]

For each mutant of ``conformance.mutants.CATALOGUE`` (those the generators
can reach, unless ``--all``), and the two hopeless candidates of
tests/fixtures/mutants.py (one hangs on every scenario, one kills its
process), runs the campaign of ``conformance run`` in each mode until its
first confirmed divergence (re-runs included), or until the budget is spent,
and prints the seconds and scenarios it took. Starting the two workers is not
counted. The output is Markdown, ready for docs/performance.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402
from conformance.campaign import Campaign  # noqa: E402
from conformance.fuzz import Fuzzer  # noqa: E402
from conformance.isolation import WorkerPair, WorkerProcess  # noqa: E402
from conformance.mutants import CATALOGUE  # noqa: E402
from reference import default_version  # noqa: E402

MODES = ("fuzz", "hypothesis")
#: (clause, name, spec, kind) of the candidates that hang on, or die in, every scenario.
HOPELESS = (
    ("-", "HangsAlways", "tests.fixtures.mutants:HangsAlways", "runner"),
    ("-", "DiesAlways", "tests.fixtures.mutants:DiesAlways", "runner"),
)


def catch(spec: str, kind: str, mode: str, seed: int, budget_s: float) -> Tuple[Optional[float], int]:
    """Seconds to the first confirmed divergence (None: not caught in the budget) and scenarios checked."""
    from strategies import scenarios

    source = Fuzzer(kind) if mode == "fuzz" else scenarios(kind)
    reference = "reference.run" if kind == "run" else "reference"
    with WorkerPair(reference, WorkerProcess(spec, kind)) as pair:
        campaign = Campaign(pair, source, seed, budget_s=budget_s, stop_at_first_divergence=True)
        result = campaign.run()
    return result.first_divergence_s, result.examples


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per mutant and mode (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutant", action="append", metavar="NAME", help="only this mutant (repeatable)")
    parser.add_argument("--all", action="store_true", help="also the mutants expected to survive")
    args = parser.parse_args(argv)

    version = default_version()
    mutants = [
        (m.clause, m.name, m.spec, m.kind) for m in CATALOGUE if args.all or m.expected_to_survive(version) is None
    ] + list(HOPELESS)
    mutants = [m for m in mutants if not args.mutant or m[1] in args.mutant]
    rows = []
    times: dict[str, List[float]] = {mode: [] for mode in MODES}
    for clause, name, spec, kind in mutants:
        cells = [clause, f"`{name}`", kind]
        for mode in MODES:
            seconds, examples = catch(spec, kind, mode, args.seed, args.budget)
            if seconds is None:
                cells.append(f"not caught ({examples} scenarios)")
            else:
                times[mode].append(seconds)
                cells.append(f"{seconds:.2f} s ({examples})")
        rows.append(tuple(cells))
        print(" | ".join(cells), file=sys.stderr)
    print(f"Machine: {machine.describe()}")
    print(f"Seed {args.seed}, budget {args.budget:g} s per mutant and mode; time to the first confirmed divergence")
    print("(scenarios checked in brackets), workers' start-up not counted.\n")
    print(machine.table(rows, ("clause", "mutant", "kind", "fuzz", "hypothesis")))
    print()
    summary = []
    for mode in MODES:
        caught = times[mode]
        median = f"{statistics.median(caught):.2f} s" if caught else "-"
        slowest = f"{max(caught):.2f} s" if caught else "-"
        summary.append((mode, f"{len(caught)}/{len(mutants)}", median, slowest))
    print(machine.table(summary, ("mode", "caught", "median time to catch", "slowest")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
