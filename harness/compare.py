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
from harness.record import Comparison, SuiteResult
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
                      mde=mde)    # NaN: not estimable here (stats.metric_mde); None: a record from before MDEs


def compare_suite(suite: Suite, base_rows: Rows, aligned_rows: Rows, seed: int = 0,
                  n_boot: int = N_BOOT) -> dict[str, Comparison]:
    """metric name -> Comparison (aligned - base) for every metric of the suite, in declaration order.
    Both checkpoints must have answered the same items: anything else is refused, never silently paired."""
    same_items(suite.name, base_rows, aligned_rows)
    return {m.name: compare_metric(m, base_rows, aligned_rows, seed=seed, n_boot=n_boot) for m in suite.metrics}


def same_items(suite: str, base_rows: Rows, aligned_rows: Rows) -> None:
    """HarnessError unless both row sets hold the same item ids (e.g. a suite that grew from 8 to 12 items
    between the base and the aligned evaluation would otherwise be compared on the 8 they share)."""
    b, a = [r.get("id") for r in base_rows], [r.get("id") for r in aligned_rows]
    if len(b) != len(a) or set(b) != set(a):
        only_b, only_a = len(set(b) - set(a)), len(set(a) - set(b))
        raise HarnessError(f"suite {suite}: base and aligned answered different items ({len(b)} vs {len(a)} "
                           f"items; {only_b} only in base, {only_a} only in aligned): they were evaluated on "
                           "different data and are not compared")


def same_inputs(suite: str, base: SuiteResult, aligned: SuiteResult, what: str = "base and aligned") -> None:
    """HarnessError naming the difference when two results of one suite were computed from different data
    (data manifest hash), by different judges (identity) or on a different number of items.

    A result from before these fields existed has them empty: that is "unknown", not a mismatch (the committed
    leaderboard records and the CI reference were made before), so only two known, different values refuse."""
    first, second = what.split(" and ") if " and " in what else ("first", "second")
    if base.data and aligned.data and base.data != aligned.data:
        raise HarnessError(f"suite {suite}: {what} were evaluated on different data (data manifest "
                           f"{base.data} vs {aligned.data}): the benchmark files changed in between; re-run "
                           "the evaluation of both on the same data")
    if base.judge and aligned.judge and base.judge != aligned.judge:
        diff = ", ".join(f"{k} {base.judge.get(k)!r} vs {aligned.judge.get(k)!r}"
                         for k in sorted(set(base.judge) | set(aligned.judge)) if base.judge.get(k) != aligned.judge.get(k))
        raise HarnessError(f"suite {suite}: {what} were scored by different judges ({diff}); the {first} and the "
                           f"{second} numbers are not comparable")
    if base.items is not None and aligned.items is not None and base.items != aligned.items:
        raise HarnessError(f"suite {suite}: {what} answered a different number of items ({base.items} vs "
                           f"{aligned.items}): different data or limits are not compared")


def _test_name(metric: Metric) -> str:
    return "mcnemar" if metric.test == "mcnemar" else "paired-bootstrap"
