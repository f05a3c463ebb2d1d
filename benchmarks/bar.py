"""Issue #4's bar, measured: pool cost, checks per second per mode, hopeless candidates, determinism.

    python3 benchmarks/bar.py [--scenarios 600] [--rounds 5] [--seed 1]

Prints one row per item of the bar with what was measured and whether it is
met. The throughput items come from the same interleaved measurement as
benchmarks/throughput.py (medians over rounds); the others run the real
command line, as a user would, with ``--budget 30``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402
from benchmarks.throughput import campaign_rate, in_process, pooled  # noqa: E402
from conformance.fuzz import Fuzzer  # noqa: E402
from conformance.isolation import WorkerPair  # noqa: E402
from conformance.targets import load_target  # noqa: E402

BUDGET_S = 30


def conformance(*args: str, cwd: str) -> Tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    return done, time.monotonic() - started


def throughput(scenarios: int, rounds: int, seed: int) -> Dict[str, float]:
    from strategies import scenarios as hypothesis_scenarios

    reference, candidate = load_target("reference"), load_target("asyncio")
    fuzzer = Fuzzer("runner")
    made = list(itertools.islice(fuzzer.scenarios(seed), scenarios))
    samples: Dict[str, List[float]] = {}
    with WorkerPair("reference", "asyncio") as pair:
        gc.collect()
        gc.freeze()
        pooled(pair, made[:50], 8)
        in_process(made[:50], reference, candidate)
        for round_number in range(rounds):
            samples.setdefault("in", []).append(in_process(made, reference, candidate)[0])
            samples.setdefault("pool", []).append(pooled(pair, made, 8)[0])
            samples.setdefault("fuzz", []).append(campaign_rate(pair, fuzzer, seed + round_number, scenarios)[0])
            rate = campaign_rate(pair, hypothesis_scenarios("runner"), seed + round_number, scenarios // 2)[0]
            samples.setdefault("hypothesis", []).append(rate)
    return {name: statistics.median(values) for name, values in samples.items()}


def hopeless(mutant: str, category: str) -> Tuple[str, bool]:
    with tempfile.TemporaryDirectory() as cwd:
        done, elapsed = conformance(
            "run", "--candidate", f"tests.fixtures.mutants:{mutant}", "--budget", str(BUDGET_S), "--json", "out.json",
            cwd=cwd,
        )  # fmt: skip
        found: List[Any] = []
        if os.path.exists(os.path.join(cwd, "out.json")):
            with open(os.path.join(cwd, "out.json"), encoding="utf-8") as handle:
                found = [group["category"] for group in json.load(handle)["divergences"]]
    met = done.returncode == 1 and found == [category] and elapsed <= BUDGET_S
    return f"exit {done.returncode}, {found}, {elapsed:.1f} s", met


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "elapsed_s"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def deterministic(mode: str, seed: int) -> Tuple[str, bool]:
    texts = []
    with tempfile.TemporaryDirectory() as cwd:
        for run in ("a", "b"):
            conformance(
                "run", "--candidate", "tests.fixtures.mutants:NoCancelOnClose", "--mode", mode, "--examples", "300",
                "--seed", str(seed), "--json", f"{run}.json", cwd=cwd,
            )  # fmt: skip
            with open(os.path.join(cwd, f"{run}.json"), encoding="utf-8") as handle:
                document = json.load(handle)
            texts.append(json.dumps(_without_timings(document), sort_keys=True))
    groups = len(json.loads(texts[0])["divergences"])
    return f"{groups} group(s), {'identical' if texts[0] == texts[1] else 'DIFFERENT'}", texts[0] == texts[1]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenarios", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rates = throughput(args.scenarios, args.rounds, args.seed)
    in_process_rate = 1 / rates["in"]
    rows: List[Tuple[str, str, str, bool]] = [
        (
            "worker pool cost vs in-process, same scenarios",
            f"{rates['pool'] / rates['in']:.2f}x ({1 / rates['pool']:,.0f} vs {in_process_rate:,.0f} checks/s)",
            "<= 1.3x",
            rates["pool"] / rates["in"] <= 1.3,
        ),
        (
            "fuzz mode, checks/s on 2 cores",
            f"{rates['fuzz']:,.0f} (in-process limit on 2 cores: {2 * in_process_rate:,.0f})",
            ">= 1,000 and >= half the limit",
            rates["fuzz"] >= 1000 and rates["fuzz"] >= in_process_rate,
        ),
        ("Hypothesis mode, checks/s", f"{rates['hypothesis']:,.0f}", ">= 300", rates["hypothesis"] >= 300),
    ]
    for mutant, category in (("HangsAlways", "HANG"), ("DiesAlways", "CRASH")):
        measured, met = hopeless(mutant, category)
        rows.append((f"{mutant} with --budget {BUDGET_S}", measured, f"{category}, exit 1, <= {BUDGET_S} s", met))
    for mode in ("hypothesis", "fuzz"):
        measured, met = deterministic(mode, args.seed)
        rows.append((f"same seed twice, {mode} mode", measured, "identical JSON but timings", met))
    print(f"Machine: {machine.describe()}\n")
    print(
        machine.table(
            [(item, measured, bar, "met" if met else "NOT MET") for item, measured, bar, met in rows],
            ("bar item", "measured", "bar", ""),
        )
    )
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
