"""Base vs aligned, per metric: delta, 95 % CI of the delta, and a paired p-value.

Both checkpoints answer the same items, so every test here is paired by item `id` (harness.stats.pair_rows):
- metrics declared with test="mcnemar" and a per-item boolean `item_key` (POPE accuracy, AMBER-discriminative
  accuracy) get the exact McNemar test on the discordant items; their delta CI still comes from the paired
  bootstrap, because McNemar gives a p-value, not an interval;
- every other metric (F1, CHAIR, MMHal score, yes-ratio, ...) is a function of all rows, so the paired bootstrap
  resamples items and recomputes the metric on both checkpoints (delta CI and bootstrap p).

Pure numpy/scipy: no torch, so tables, boards and the gate can re-compare stored samples cheaply.
"""

from __future__ import annotations

import math
from typing import Sequence

from harness.errors import HarnessError
from harness.record import Comparison
from harness.stats import N_BOOT, mcnemar, metric_mde, pair_rows, paired_bootstrap
from harness.suite import Metric, Suite

Rows = Sequence[dict]


def compare_metric(metric: Metric, base_rows: Rows, aligned_rows: Rows, seed: int = 0,
                   n_boot: int = N_BOOT) -> Comparison:
    """One metric: rows_filter first (e.g. one POPE split), then the paired test the metric declares."""
    base, aligned = pair_rows(metric.select(base_rows), metric.select(aligned_rows))
    nan = float("nan")
    if not base:
        # No shared items (empty split, or the two runs answered different items): nothing to compare.
        return Comparison(delta=nan, ci=[nan, nan], p_value=None, test=_test_name(metric),
                          direction=metric.direction)
    delta, ci, p_boot = paired_bootstrap(base, aligned, metric.fn, n_boot=n_boot, seed=seed)
    if metric.test == "mcnemar":
        key = metric.item_key
        if not key:
            raise HarnessError(f"metric {metric.name!r} declares test='mcnemar' but no item_key")
        # A row without the key (e.g. an unparsable answer) counts as not correct, never as skipped:
        # skipping would flatter the checkpoint that fails to parse more often.
        p = mcnemar([bool(r.get(key)) for r in base], [bool(r.get(key)) for r in aligned])
    else:
        p = p_boot
    mde = metric_mde(base, aligned, metric.fn, metric.item_key if metric.test == "mcnemar" else None)
    return Comparison(delta=float(delta), ci=[float(ci[0]), float(ci[1])],
                      p_value=None if p is None or (isinstance(p, float) and math.isnan(p)) else float(p),
                      test=_test_name(metric), direction=metric.direction,
                      mde=None if math.isnan(mde) else mde)


def compare_suite(suite: Suite, base_rows: Rows, aligned_rows: Rows, seed: int = 0,
                  n_boot: int = N_BOOT) -> dict[str, Comparison]:
    """metric name -> Comparison (aligned - base) for every metric of the suite, in declaration order."""
    return {m.name: compare_metric(m, base_rows, aligned_rows, seed=seed, n_boot=n_boot) for m in suite.metrics}


def _test_name(metric: Metric) -> str:
    return "mcnemar" if metric.test == "mcnemar" else "paired-bootstrap"
