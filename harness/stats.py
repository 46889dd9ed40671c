"""Confidence intervals and paired significance tests over per-item sample rows.

Metrics are functions of rows (F1, CHAIRi and the AMBER score are not means of per-item values), so the
bootstrap resamples items and recomputes the metric. Paired tests pair rows by their `id`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Rows = Sequence[dict]
# 1,000 resamples. The 2.5 / 97.5 percentiles still move between bootstrap seeds: on a 2k rm-dpo run's samples by up
# to 0.005 (micro POPE, a fraction), 1.2 points (AMBER attribute F1) and 2.5 points (MM-Vet counting, 40 items)
# (scripts/measure_bootstrap.py); the seed is fixed per run, so a record's CIs reproduce exactly.
N_BOOT = 1000


def _finite(x: float) -> bool:
    return x is not None and not math.isnan(x)


def _summable(fn) -> bool:
    """Metrics that are a reduction of per-row feature sums (benchmarks.metrics.SumMetric: `matrix(rows)` and
    `from_sums(sums)`) are resampled as count vectors: the same draws, ~30x faster than re-building row lists."""
    return hasattr(fn, "matrix") and hasattr(fn, "from_sums")


def _draws(n: int, n_boot: int, seed: int):
    """Index draws of one bootstrap (default_rng(seed), integers(0, n, n) per resample)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def _resampled(rows: list[dict], fn, n_boot: int, seed: int):
    """fn over each bootstrap resample of rows (same draws whichever path computes it)."""
    if _summable(fn):
        m = fn.matrix(rows)
        for idx in _draws(len(rows), n_boot, seed):
            yield fn.from_sums(np.bincount(idx, minlength=len(rows)) @ m)
    else:
        for idx in _draws(len(rows), n_boot, seed):
            yield fn([rows[i] for i in idx])


def bootstrap_ci(rows: Rows, fn: Callable[[Rows], float], n_boot: int = N_BOOT, seed: int = 0,
                 alpha: float = 0.05) -> list[float]:
    """Percentile bootstrap interval of fn over items (resampled with replacement)."""
    rows = list(rows)
    if not rows:
        return [float("nan"), float("nan")]
    stats = [v for v in _resampled(rows, fn, n_boot, seed) if _finite(v)]
    if not stats:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def pair_rows(base: Rows, aligned: Rows) -> tuple[list[dict], list[dict]]:
    """Rows of both checkpoints on the same items, in the same order (by `id`)."""
    a = {r["id"]: r for r in aligned}
    ids = [r["id"] for r in base if r["id"] in a]
    b = {r["id"]: r for r in base}
    return [b[i] for i in ids], [a[i] for i in ids]


def paired_bootstrap(base: Rows, aligned: Rows, fn: Callable[[Rows], float], n_boot: int = N_BOOT,
                     seed: int = 0, alpha: float = 0.05) -> tuple[float, list[float], float]:
    """delta = fn(aligned) - fn(base); CI and two-sided p from resampling the same items for both.

    p is the bootstrap estimate 2·min(P(delta* <= 0), P(delta* >= 0)), clipped to [1/n_boot, 1].
    """
    b, a = pair_rows(base, aligned)
    if not b:
        return float("nan"), [float("nan"), float("nan")], float("nan")
    delta = fn(a) - fn(b)
    deltas = [x - y for x, y in zip(_resampled(a, fn, n_boot, seed), _resampled(b, fn, n_boot, seed))]
    deltas = [d for d in deltas if _finite(d)]
    if not deltas:
        return float(delta), [float("nan"), float("nan")], float("nan")
    deltas = np.asarray(deltas)
    lo, hi = np.percentile(deltas, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    p = 2 * min((deltas <= 0).mean(), (deltas >= 0).mean())
    p = float(min(1.0, max(p, 1.0 / len(deltas))))
    return float(delta), [float(lo), float(hi)], p


def mcnemar(base_correct: Sequence[bool], aligned_correct: Sequence[bool]) -> float:
    """Exact McNemar test: two-sided binomial test on the discordant pairs (b = base-only right,
    c = aligned-only right; under H0 each discordant pair is a fair coin)."""
    from scipy.stats import binomtest

    b = sum(1 for x, y in zip(base_correct, aligned_correct) if x and not y)
    c = sum(1 for x, y in zip(base_correct, aligned_correct) if y and not x)
    if b + c == 0:
        return 1.0
    return float(binomtest(c, b + c, 0.5).pvalue)


# ---------------------------------------------------------------- power: minimum detectable effect (paired)

ALPHA, POWER = 0.05, 0.8       # the MDE's conventions: two-sided 5 % test, 80 % power


def jackknife_values(rows: Rows, fn: Callable[[Rows], float]) -> np.ndarray:
    """Per-item jackknife pseudo-values n·θ − (n−1)·θ₋ᵢ. For a mean they are the items' own values; for a ratio
    metric (F1, CHAIRi, the AMBER score) they are its linearisation, so the paired differences of two checkpoints'
    pseudo-values have the SD a paired test on that metric faces."""
    rows = list(rows)
    n = len(rows)
    if n < 2:
        return np.full(n, np.nan)
    theta = fn(rows)
    if _summable(fn):
        m = np.asarray(fn.matrix(rows), dtype=float)
        total = m.sum(axis=0)
        loo = np.array([fn.from_sums(total - m[i]) for i in range(n)], dtype=float)
    else:
        loo = np.array([fn(rows[:i] + rows[i + 1:]) for i in range(n)], dtype=float)
    return n * theta - (n - 1) * loo


def mde_paired_t(sd_diff: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference a two-sided paired t-test on n pairs detects with `power` (noncentral t,
    scipy), given the SD of the per-item paired differences."""
    from scipy.optimize import brentq
    from scipy.stats import nct, norm, t

    if n < 2 or not _finite(sd_diff) or sd_diff == 0:
        # no item changed: the data hold no estimate of the differences' spread, so no MDE (not "0 = anything")
        return float("nan")
    df, tc = n - 1, t.ppf(1 - alpha / 2, n - 1)

    def gap(d: float) -> float:
        nc = d * math.sqrt(n) / sd_diff
        # the far tail (rejecting on the wrong side) is ~0; scipy's nct.cdf returns NaN out there
        return nct.sf(tc, df, nc) + np.nan_to_num(nct.cdf(-tc, df, nc)) - power

    hi = 4 * (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd_diff / math.sqrt(max(n - 1, 1))
    for _ in range(20):        # very few pairs (n = 2: df 1, t_crit 12.7) need a wider bracket than the normal bound
        if gap(hi) > 0:
            return float(brentq(gap, 1e-12, hi))
        hi *= 4
    return float("nan")


def mcnemar_power(delta: float, discordance: float, n: int, alpha: float = ALPHA) -> float:
    """Power of McNemar's test for a difference `delta` in paired proportions at discordance rate p_d (Connor
    1987's normal approximation: Φ((|Δ|·√n − z·√p_d) / √(p_d − Δ²)))."""
    from scipy.stats import norm

    pd = max(discordance, abs(delta))          # a difference of Δ needs at least Δ of the items discordant
    spread = pd - delta ** 2
    if spread <= 0:
        return 1.0
    return float(norm.cdf((abs(delta) * math.sqrt(n) - norm.ppf(1 - alpha / 2) * math.sqrt(pd)) / math.sqrt(spread)))


def mde_mcnemar(discordance: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest difference in paired proportions McNemar's test detects with `power` at n pairs, given the
    observed share of discordant items (at least the difference itself, so 0 discordant items is not MDE 0)."""
    from scipy.optimize import brentq

    if n < 1 or not _finite(discordance):
        return float("nan")
    if mcnemar_power(1.0, discordance, n, alpha) < power:
        return float("nan")                    # not even a change on every item would be detected
    return float(brentq(lambda d: mcnemar_power(d, discordance, n, alpha) - power, 1e-9, 1.0))


def metric_mde(base: Rows, aligned: Rows, fn: Callable[[Rows], float], item_key: str | None = None,
               alpha: float = ALPHA, power: float = POWER) -> float:
    """The minimum detectable effect of one metric at these paired items: McNemar's from the discordance rate when
    the metric is tested on a per-item boolean (`item_key`), else the paired t's from the SD of the per-item
    paired differences (jackknife pseudo-values, which are the items' values for a mean)."""
    b, a = pair_rows(base, aligned)
    if not b:
        return float("nan")
    if item_key:
        disc = sum(bool(x.get(item_key)) != bool(y.get(item_key)) for x, y in zip(b, a)) / len(b)
        return mde_mcnemar(disc, len(b), alpha, power) * _share_scale(b, a, fn, item_key)
    diffs = jackknife_values(a, fn) - jackknife_values(b, fn)
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) < 2:
        return float("nan")
    return mde_paired_t(float(np.std(diffs, ddof=1)), len(diffs), alpha, power)


def _share_scale(base: Rows, aligned: Rows, fn: Callable[[Rows], float], item_key: str) -> float:
    """McNemar's MDE is a difference of shares; a metric may report the share on another scale (AMBER's accuracy
    in %): the ratio of the metric to the share of true `item_key`, from whichever side has a true item (1 when
    neither has one: a rate, e.g. the share of degenerate answers)."""
    for rows in (aligned, base):
        share = sum(bool(r.get(item_key)) for r in rows) / len(rows)
        if share > 0:
            value = fn(list(rows))
            return float(value / share) if _finite(value) else 1.0
    return 1.0


def mde_from_ci(ci: Sequence[float], alpha: float = ALPHA, power: float = POWER) -> float:
    """An approximate MDE for a record that predates stored MDEs: the delta's CI half-width is z_{1−α/2}·SE, and
    the MDE of a normal test is (z_{1−α/2} + z_power)·SE."""
    from scipy.stats import norm

    if not ci or len(ci) != 2 or not (_finite(ci[0]) and _finite(ci[1])):
        return float("nan")
    z = norm.ppf(1 - alpha / 2)
    return float((ci[1] - ci[0]) / 2 / z * (z + norm.ppf(power)))


def unpaired_bootstrap_permutation(rows_a: Rows, rows_b: Rows, fn: Callable[[Rows], float], n_boot: int = N_BOOT,
                                   seed: int = 0, alpha: float = 0.05) -> tuple[float, list[float], float]:
    """delta = fn(b) - fn(a) for two sets of items that do not pair: CI from resampling each set on its own
    (independent bootstrap), two-sided p from a permutation test (the pooled items' labels shuffled n_boot times,
    p = (1 + #|Δ*| ≥ |Δ|) / (1 + n_boot))."""
    a, b = list(rows_a), list(rows_b)
    if not a or not b:
        return float("nan"), [float("nan"), float("nan")], float("nan")
    delta = fn(b) - fn(a)
    boots = [y - x for x, y in zip(_resampled(a, fn, n_boot, seed), _resampled(b, fn, n_boot, seed + 1))]
    boots = [d for d in boots if _finite(d)]
    ci = [float(v) for v in np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])] if boots else \
        [float("nan"), float("nan")]
    pooled, rng = a + b, np.random.default_rng(seed)
    summable = _summable(fn)
    m = np.asarray(fn.matrix(pooled), dtype=float) if summable else None
    hits = 0
    for _ in range(n_boot):
        perm = rng.permutation(len(pooled))
        ia, ib = perm[:len(a)], perm[len(a):]
        if summable:
            d = fn.from_sums(m[ib].sum(axis=0)) - fn.from_sums(m[ia].sum(axis=0))
        else:
            d = fn([pooled[i] for i in ib]) - fn([pooled[i] for i in ia])
        hits += _finite(d) and abs(d) >= abs(delta) - 1e-12
    return float(delta), ci, float((1 + hits) / (1 + n_boot))
