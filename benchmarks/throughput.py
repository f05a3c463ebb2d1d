"""Differential checks per second in each mode, against the raw in-process cost of the same scenarios.

    python3 benchmarks/throughput.py [--scenarios 600] [--rounds 5] [--candidate asyncio] [--seed 1]

Measures, in one run and interleaved round by round (so that load from
elsewhere on the machine hits every column alike; medians are printed):

* in-process: the same scenarios run under the reference and the candidate
  one after the other in this process, and judged, with no isolation at all.
  This process's heap is frozen first (``gc.freeze``), as the workers' is, so
  that the interpreter's collections cost the same on both sides: the
  denominator of every ratio, and as low as it can be made.
* pool: the same scenarios through the worker pool (``conformance.pipeline``)
  with pipelining (depth 8) and without (depth 1), judged the same way;
  plus the CPU time each worker spent per scenario, against the in-process
  cost of executing one: the pool's overhead per scenario.
* campaigns: ``conformance run``'s whole loop (generation, pool, judging,
  recording) in fuzz mode and in Hypothesis mode, and generation alone.

The output is Markdown, ready for docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402
from conformance.campaign import Campaign, generate  # noqa: E402
from conformance.differential import judge  # noqa: E402
from conformance.fuzz import Fuzzer  # noqa: E402
from conformance.interpreter import execute  # noqa: E402
from conformance.isolation import WorkerPair  # noqa: E402
from conformance.pipeline import Deadlines, Pipeline  # noqa: E402
from conformance.scenario import Scenario  # noqa: E402
from conformance.targets import load_target  # noqa: E402


def _process_cpu_s(pid: int) -> Optional[float]:
    """User + system CPU seconds of a process (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(scenarios: List[Scenario], reference: Any, candidate: Any) -> Tuple[float, float]:
    """Seconds per check, and CPU seconds per scenario execution, with both runners in this process."""
    executing = 0.0

    def run(scenario: Scenario, target: Any, order: Optional[List[str]] = None) -> Dict[str, Any]:
        nonlocal executing
        started = time.process_time()
        observation = execute(scenario, target, cancel_order=order)
        executing += time.process_time() - started
        return observation

    def search(scenario: Scenario) -> Callable[[List[List[str]], Dict[str, Any]], Dict[str, Any]]:
        def try_orders(orders: List[List[str]], expect: Dict[str, Any]) -> Dict[str, Any]:
            for tried, order in enumerate(orders, 1):
                if run(scenario, reference, order) == expect:
                    return {"found": order, "tried": tried}
            return {"found": None, "tried": len(orders)}

        return try_orders

    # What earlier rounds left on this process's heap (a Hypothesis campaign leaves plenty) would make
    # every collection the interpreter makes walk it: freeze it, as a worker freezes its own.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    for scenario in scenarios:
        ref = {"observation": run(scenario, reference)}
        cand = {"observation": run(scenario, candidate)}
        judge(scenario, ref, cand, search(scenario))
    return (time.perf_counter() - started) / len(scenarios), executing / (2 * len(scenarios))


def pooled(pair: WorkerPair, scenarios: List[Scenario], depth: int) -> Tuple[float, Optional[float]]:
    """Seconds per check through the pool, and the workers' mean CPU seconds per scenario."""
    pids = [pair.reference.pid, pair.candidate.pid]
    cpu_before = [_process_cpu_s(pid) for pid in pids if pid is not None]
    pipeline = Pipeline(pair, Deadlines(), depth)
    started = time.perf_counter()

    def finish() -> None:
        scenario, ref, cand = pipeline.next()
        if ref is not None and cand is not None:
            judge(scenario, ref, cand, lambda orders, expect: pipeline.search(scenario, orders, expect))

    for scenario in scenarios:
        pipeline.submit(scenario)
        while pipeline.full:
            finish()
    while len(pipeline):
        finish()
    elapsed = (time.perf_counter() - started) / len(scenarios)
    cpu_after = [_process_cpu_s(pid) for pid in pids if pid is not None]
    same_workers = [pair.reference.pid, pair.candidate.pid] == pids
    if not same_workers or len(cpu_before) != 2 or None in cpu_before or None in cpu_after:
        return elapsed, None  # no /proc, or a worker was replaced: its CPU time is lost
    return elapsed, (sum(cpu_after) - sum(cpu_before)) / (2 * len(scenarios))  # type: ignore[arg-type]


def campaign_rate(pair: WorkerPair, source: Any, seed: int, examples: int) -> Tuple[float, Optional[float]]:
    """Checks per second of a campaign's loop, and the CPU seconds per check of driver and workers together."""
    pids = [pair.reference.pid, pair.candidate.pid]
    before = [_process_cpu_s(pid) for pid in pids if pid is not None] + [time.process_time()]
    result = Campaign(pair, source, seed, examples=examples).run(shrinking=False)
    after = [_process_cpu_s(pid) for pid in pids if pid is not None] + [time.process_time()]
    rate = result.examples / result.elapsed_s
    if len(before) != 3 or None in before or None in after or [pair.reference.pid, pair.candidate.pid] != pids:
        return rate, None
    return rate, (sum(after) - sum(before)) / result.examples  # type: ignore[arg-type]


def generation_cost(source: Any, seed: int, examples: int) -> float:
    """Seconds to make one scenario."""
    started = time.perf_counter()
    generate(source, seed, lambda scenario: None, examples)
    return (time.perf_counter() - started) / examples


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenarios", type=int, default=600, help="scenarios per round (default 600)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--candidate", default="asyncio", help="a runner or loop target (default asyncio)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from strategies import scenarios as hypothesis_scenarios

    reference, candidate = load_target("reference"), load_target(args.candidate)
    kind = candidate.kind
    fuzzer = Fuzzer(kind)
    scenarios = list(itertools.islice(fuzzer.scenarios(args.seed), args.scenarios))
    samples: Dict[str, List[float]] = {}

    def sample(name: str, value: Optional[float]) -> None:
        if value is not None:
            samples.setdefault(name, []).append(value)

    with WorkerPair("reference", args.candidate) as pair:
        gc.collect()
        gc.freeze()  # as the workers do (conformance.worker._freeze_heap)
        pooled(pair, scenarios[:50], 8)  # warm both sides up
        in_process(scenarios[:50], reference, candidate)
        for round_number in range(args.rounds):
            per_check, per_execute = in_process(scenarios, reference, candidate)
            sample("in-process s/check", per_check)
            sample("in-process CPU s/execute", per_execute)
            per_check, worker_cpu = pooled(pair, scenarios, 8)
            sample("pool s/check", per_check)
            sample("worker CPU s/scenario", worker_cpu)
            sample("pool depth 1 s/check", pooled(pair, scenarios, 1)[0])
            seed = args.seed + round_number
            rate, cpu = campaign_rate(pair, fuzzer, seed, args.scenarios)
            sample("fuzz checks/s", rate)
            sample("fuzz CPU s/check", cpu)
            rate, cpu = campaign_rate(pair, hypothesis_scenarios(kind), seed, args.scenarios // 2)
            sample("hypothesis checks/s", rate)
            sample("hypothesis CPU s/check", cpu)
            sample("fuzz s/scenario made", generation_cost(fuzzer, seed, args.scenarios))
            sample("hypothesis s/scenario made", generation_cost(hypothesis_scenarios(kind), seed, args.scenarios // 2))
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    median = {name: statistics.median(values) for name, values in samples.items()}
    in_proc = median["in-process s/check"]
    rows = [
        ("in-process (no isolation), 1 core", f"{1 / in_proc:,.0f}", f"{in_proc * 1e3:.3f}", "1.00"),
        (
            "in-process limit on 2 cores (2 x the above)",
            f"{2 / in_proc:,.0f}",
            f"{in_proc / 2 * 1e3:.3f}",
            "0.50",
        ),
    ]
    pools = (("worker pool, pipelined (depth 8)", "pool s/check"), ("worker pool, depth 1", "pool depth 1 s/check"))
    for label, key in pools:
        rows.append((label, f"{1 / median[key]:,.0f}", f"{median[key] * 1e3:.3f}", f"{median[key] / in_proc:.2f}"))
    loops = (
        ("`conformance run --mode fuzz` loop", "fuzz checks/s"),
        ("`conformance run` loop (Hypothesis)", "hypothesis checks/s"),
    )
    for label, key in loops:
        rate = median[key]
        rows.append((label, f"{rate:,.0f}", f"{1e3 / rate:.3f}", f"{1 / rate / in_proc:.2f}"))
    print(f"Machine: {machine.describe()}")
    print(f"Candidate {args.candidate} ({kind}) against the reference; {args.scenarios} fuzz scenarios")
    print(f"(seed {args.seed}), {args.rounds} interleaved rounds, medians.\n")
    print(machine.table(rows, ("what", "checks/s", "ms/check", "x in-process")))
    overhead_rows = [
        ("in-process execute (CPU per scenario)", f"{median['in-process CPU s/execute'] * 1e6:,.0f} µs"),
        ("fuzz: make one scenario", f"{median['fuzz s/scenario made'] * 1e6:,.0f} µs"),
        ("Hypothesis: make one scenario", f"{median['hypothesis s/scenario made'] * 1e6:,.0f} µs"),
    ]
    if "worker CPU s/scenario" in median:
        worker_cpu, executing = median["worker CPU s/scenario"], median["in-process CPU s/execute"]
        overhead_rows.insert(1, ("worker CPU per scenario (execute + protocol)", f"{worker_cpu * 1e6:,.0f} µs"))
        overhead_rows.insert(2, ("pool overhead per scenario per worker", f"{(worker_cpu - executing) * 1e6:,.0f} µs"))
    for mode in ("fuzz", "hypothesis"):
        if f"{mode} CPU s/check" in median:
            cpu = median[f"{mode} CPU s/check"]
            overhead_rows.append(
                (
                    f"{mode} loop: CPU per check, driver and workers (ceiling on 2 idle cores)",
                    f"{cpu * 1e6:,.0f} µs ({2 / cpu:,.0f} checks/s)",
                )
            )
    print()
    print(machine.table(overhead_rows, ("cost", "median")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
