"""Measure the bootstrap on a finished run's samples: the speed of the count-matrix path (benchmarks.metrics.SumMetric)
against plain Python over the rows, and how far the 95 % CI endpoints move between bootstrap seeds.

    python scripts/measure_bootstrap.py RUN_DIR [SUITE,SUITE,...]

Prints one line per suite. The numbers quoted in benchmarks/metrics.py and harness/stats.py came from this script
on the aligned samples of `harness run --method rm-dpo --size 2k` (seed 0).
"""

import sys
import time

from harness import registry
from harness.io import read_jsonl
from harness.stats import bootstrap_ci

SUITES = "micro-pope,micro-amber,micro-chair,micro-mmhal,micro-mmvet"


def measure(run: str, name: str, seeds: int = 5) -> str:
    suite = registry.load("suites", name)
    rows = read_jsonl(f"{run}/samples/aligned/{name}.jsonl")
    t0 = time.perf_counter()
    fast = [bootstrap_ci(m.select(rows), m.fn) for m in suite.metrics]
    t1 = time.perf_counter()
    slow = [bootstrap_ci(m.select(rows), lambda r, f=m.fn: f(r)) for m in suite.metrics]   # not a SumMetric
    t2 = time.perf_counter()
    for a, b in zip(fast, slow):
        assert str(a) == str(b) or max(abs(x - y) for x, y in zip(a, b)) < 1e-9, "the two paths disagree"
    moves = []
    for m in suite.metrics:
        cis = [bootstrap_ci(m.select(rows), m.fn, seed=s) for s in range(seeds)]
        moves.append((max(max(c[i] for c in cis) - min(c[i] for c in cis) for i in (0, 1)), m.name))
    worst = max(moves)
    return (f"{name}: {len(suite.metrics)} metrics x {len(rows)} rows: count matrix {t1 - t0:.2f} s, rows "
            f"{t2 - t1:.2f} s ({(t2 - t1) / (t1 - t0):.0f}x); CI endpoints over seeds 0-{seeds - 1} move up to "
            f"{worst[0]:.4g} ({worst[1]})")


if __name__ == "__main__":
    for suite_name in (sys.argv[2] if len(sys.argv) > 2 else SUITES).split(","):
        print(measure(sys.argv[1], suite_name), flush=True)
