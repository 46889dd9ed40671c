"""MM-Vet's own reading of the grader's replies and its aggregation (yuweihao/MM-Vet, mm-vet_evaluator.py).
docs/benchmarks.md § MM-Vet.

The script takes the reply's first space-separated token as the correctness when it is a number in [0, 1]; else
it asks again (up to 5 tries, temperature +0.5 each) and finally scores 0.0. Per capability: the sum of the
correctness over the items that need it / their number x 100; total: over all items; each rounded to 1 decimal.
The harness counts an unreadable reply as a judge failure; `official_score` scores it 0.0 as the script finally
does, over every item with a reply.
"""

from __future__ import annotations

from benchmarks.metrics import SumMetric
from benchmarks.official.mmhal import has_reply


def official_correctness(reply: str) -> float | None:
    """The script's reading of one reply; None where it would ask again."""
    try:
        score = float((reply or "").split(" ")[0].strip())
    except ValueError:
        return None
    return score if 0.0 <= score <= 1.0 else None


def _features(r: dict) -> tuple:
    if not has_reply(r):
        return (0, 0.0)
    return (1, official_correctness(r.get("judge_raw") or "") or 0.0)


def official_score(capability: str | None = None) -> SumMetric:
    """Mean official correctness x 100, over all items or those needing `capability`."""
    def features(r: dict) -> tuple:
        return _features(r) if capability is None or capability in r.get("capabilities", ()) else (0, 0.0)
    metric = SumMetric(f"mmvet_official_{capability or 'total'}", features, lambda c: 100 * c[1] / c[0], 2)
    metric.counts_unscored = True       # the script scores every reply (an unreadable one as 0.0)
    return metric
