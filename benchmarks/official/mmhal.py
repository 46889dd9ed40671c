"""MMHal-Bench's own reading of GPT-4 replies and its summary (llava-rlhf/LLaVA-RLHF, Eval/eval_gpt_mmhal.py).
docs/benchmarks.md § MMHal-Bench.

The script looks for "rating: k" (k = 0..6) in the lower-cased reply; exactly one k found -> k, none or several ->
0 (and a warning). Average score = mean rating, hallucination rate = share of ratings < 3, per question type the
mean over items i with i % 8 == type (printed with 2 decimals). The harness counts a reply with no single rating
as a judge failure (never a 0); these `official_*` metrics give the script's value over every judged reply, so
both numbers are in each record.
"""

from __future__ import annotations

from benchmarks.metrics import SumMetric

RATINGS = range(7)


def official_rating(reply: str) -> int:
    found = [k for k in RATINGS if f"rating: {k}" in (reply or "").lower()]
    return found[0] if len(found) == 1 else 0


# harness.judges.openai_judge's error for a reply that came back but held no score
UNPARSEABLE = "unparseable judge reply"


def has_reply(r: dict) -> bool:
    """The judge replied (an unreadable or empty reply included); a call that failed (HTTP, timeout) has no
    reply and is not scored by the official metrics either (the scripts retry it until it answers)."""
    return r.get("score") is not None or r.get("judge_error") == UNPARSEABLE


def _features(r: dict) -> tuple:
    if not has_reply(r):
        return (0, 0.0, 0)
    k = official_rating(r.get("judge_raw") or "")
    return (1, k, k < 3)


official_score = SumMetric("mmhal_official_score", _features, lambda c: c[1] / c[0], 3)
official_hallucination_rate = SumMetric("mmhal_official_hallucination_rate", _features, lambda c: c[2] / c[0], 3)

# the script scores every reply (an unreadable one as 0): harness.evaluate keeps unscored rows for these
for _metric in (official_score, official_hallucination_rate):
    _metric.counts_unscored = True
