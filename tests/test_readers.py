"""The readers' tools (issue 18): power (minimum detectable effect), `harness compare`, `harness rejudge`,
`harness judge calibrate`, the HTML board, the training progress. Fast tier unless marked slow."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ttest_rel

from harness import stats


# ---------------------------------------------------------------- power

def _rejection_rate(n_sims: int, simulate, test) -> float:
    return float(np.mean([test(*simulate(i)) < 0.05 for i in range(n_sims)]))


def test_paired_t_mde_has_80_percent_power_in_simulation():
    """Items whose paired differences have SD 1.3: a true mean shift of exactly the MDE is detected by the paired
    t-test in ~80 % of simulated studies, and half of it in far fewer."""
    n, sd = 120, 1.3
    mde = stats.mde_paired_t(sd, n)
    assert 2.8 * sd / np.sqrt(n) < mde < 2.95 * sd / np.sqrt(n)      # the normal approximation, a little above

    def sim(shift):
        def one(i):
            rng = np.random.default_rng(i)
            base = rng.normal(3.0, 1.0, n)
            return base, base + shift + rng.normal(0, sd, n)
        return one

    test = lambda b, a: ttest_rel(a, b).pvalue          # noqa: E731
    assert _rejection_rate(2000, sim(mde), test) == pytest.approx(0.80, abs=0.03)
    assert _rejection_rate(500, sim(mde / 2), test) < 0.4


def test_mcnemar_mde_has_80_percent_power_in_simulation():
    """Paired yes/no correctness with 12 % discordant items: a difference of the MDE is found by our exact
    McNemar test in ~80 % of simulated studies (the exact test is a little conservative: tolerance 0.05)."""
    n, disc = 400, 0.12
    mde = stats.mde_mcnemar(disc, n)

    def sim(i):
        rng = np.random.default_rng(i)
        u = rng.random(n)
        base_only, aligned_only = (disc - mde) / 2, (disc + mde) / 2
        base = (u < base_only) | (u >= disc)              # concordant items are right for both
        aligned = (u >= base_only) & (u < disc) | (u >= disc)
        return base, aligned

    rate = _rejection_rate(1500, sim, stats.mcnemar)
    assert rate == pytest.approx(0.80, abs=0.05), (mde, rate)
    assert stats.mde_mcnemar(0.0, n) > 0            # no discordant item seen is not "everything is detectable"


def test_metric_mde_uses_per_item_differences_and_discordance():
    rng = np.random.default_rng(0)
    base = [{"id": i, "score": float(rng.integers(0, 7)), "ok": bool(rng.random() < 0.7)} for i in range(200)]
    aligned = [{**r, "score": min(6.0, r["score"] + float(rng.integers(-1, 2))),
                "ok": r["ok"] if rng.random() < 0.9 else not r["ok"]} for r in base]
    mean = lambda rows: float(np.mean([r["score"] for r in rows]))      # noqa: E731
    d = np.array([a["score"] - b["score"] for a, b in zip(aligned, base)])
    assert stats.metric_mde(base, aligned, mean) == pytest.approx(stats.mde_paired_t(d.std(ddof=1), 200))
    disc = np.mean([a["ok"] != b["ok"] for a, b in zip(aligned, base)])
    assert stats.metric_mde(base, aligned, mean, item_key="ok") == pytest.approx(stats.mde_mcnemar(disc, 200))
    # the jackknife pseudo-values of a mean are the items' own values
    assert np.allclose(stats.jackknife_values(base, mean), [r["score"] for r in base])
