"""Benchmark metrics as pure functions of per-item sample rows (no torch, no lmms-eval).

Every function takes the rows of one suite (a list of dicts as written to samples/<ckpt>/<suite>.jsonl) and
returns one float, so harness.stats can bootstrap them and H3's comparisons can resample them. Definitions follow
the benchmarks' official ones (FACTS.md §2); where lmms-eval 0.7.3 differs we say so and why:

* POPE: the yes-ratio is the share of *predicted* "yes" (lmms-eval reports the share of ground-truth "yes",
  always ~0.5); answers are parsed leniently ("Yes." is yes) and an unparseable answer is counted as a parse
  failure that is wrong for accuracy and "not yes" for precision/recall (lmms-eval scores only the exact strings
  "yes"/"no" and silently drops other answers from precision and recall).
* AMBER discriminative: the positive class is "No" (AMBER's own convention; a hallucination-free model says
  "no" to absent objects), so precision/recall/F1 are computed on "no".
* AMBER Cog is lower-is-better (lmms-eval's amber_g marks it higher-is-better).
* A judged row whose judgement failed has `score: None` and `judge_failed: True`: it is skipped here and
  counted as a failure by the evaluator, never scored 0.

Rows fields used here: `label` / `parsed` ("yes"|"no"|None) for yes/no items, `kind` to tell AMBER's
generative rows from its discriminative ones, `mentioned` (object names, in order, with repeats), `truth`,
`hallu` (AMBER's annotated hallucination targets), `score` (judge rating), `capabilities` (MM-Vet).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

Rows = Sequence[dict]
NAN = float("nan")


def _div(a: float, b: float) -> float:
    return a / b if b else NAN


# ---------------------------------------------------------------- yes/no (POPE, AMBER discriminative)

def confusion(rows: Rows, positive: str = "yes") -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) with `positive` as the positive class; an unparsed answer (parsed None) is a
    predicted negative: it can never be a true positive, and on a positive item it is a false negative."""
    # One tight loop: the bootstrap calls this ~1,000 times per metric, so it is written for speed.
    tp = fp = pos = 0
    for r in rows:
        gold_pos = r["label"] == positive
        pos += gold_pos
        if r.get("parsed") == positive:
            if gold_pos:
                tp += 1
            else:
                fp += 1
    fn = pos - tp
    tn = len(rows) - tp - fp - fn
    return tp, fp, tn, fn


def accuracy(rows: Rows) -> float:
    """Share of items whose parsed answer equals the label (unparsed = wrong)."""
    return _div(sum(1 for r in rows if r.get("parsed") == r["label"]), len(rows))


def _prf(rows: Rows, positive: str) -> tuple[float, float, float]:
    """Precision, recall, F1. A model that never predicts the positive class gets precision 0 (as lmms-eval's
    POPE and scikit-learn's zero_division default), so an always-"yes" model has AMBER F1 0, not undefined."""
    if not rows:
        return NAN, NAN, NAN
    tp, fp, _, fn = confusion(rows, positive)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (0.0 if p + r == 0 else 2 * p * r / (p + r))


def precision(rows: Rows, positive: str = "yes") -> float:
    return _prf(rows, positive)[0]


def recall(rows: Rows, positive: str = "yes") -> float:
    return _prf(rows, positive)[1]


def f1(rows: Rows, positive: str = "yes") -> float:
    return _prf(rows, positive)[2]


def yes_ratio(rows: Rows) -> float:
    """Share of items the model answered "yes" (from the predictions, not the labels)."""
    return _div(sum(1 for r in rows if r.get("parsed") == "yes"), len(rows))


def parse_failure_rate(rows: Rows) -> float:
    return _div(sum(1 for r in rows if r.get("parsed") is None), len(rows))


def per_split_mean(fn: Callable[[Rows], float], splits: Sequence[str], key: str = "split") -> Callable[[Rows], float]:
    """Unweighted mean of `fn` over splits (LLaVA's 'POPE F1 averaged over the three splits')."""
    def mean_over_splits(rows: Rows) -> float:
        groups: dict = {s: [] for s in splits}
        for r in rows:                       # one pass, not one filter per split
            g = groups.get(r.get(key))
            if g is not None:
                g.append(r)
        vals = [fn(groups[s]) for s in splits if groups[s]]
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else NAN
    mean_over_splits.__name__ = f"{getattr(fn, '__name__', 'metric')}_split_mean"
    return mean_over_splits


def positive(fn: Callable[..., float], pos: str) -> Callable[[Rows], float]:
    """`fn` with another positive class (AMBER: "no")."""
    def with_positive(rows: Rows) -> float:
        return fn(rows, pos)
    with_positive.__name__ = f"{fn.__name__}_{pos}"
    return with_positive


# ---------------------------------------------------------------- object mentions (CHAIR, AMBER generative)

def _hallucinated(r: dict) -> set[str]:
    truth = set(r["truth"])
    return {o for o in r["mentioned"] if o not in truth}


def _mention_counts(rows: Rows) -> tuple[int, int]:
    """(hallucinated mentions, all mentions), pooled over captions, repeats included: CHAIR's and AMBER's
    scripts count every object word they find, not distinct objects."""
    hall = total = 0
    for r in rows:
        truth = set(r["truth"])
        total += len(r["mentioned"])
        hall += sum(1 for o in r["mentioned"] if o not in truth)
    return hall, total


def chair_s(rows: Rows) -> float:
    """CHAIRs: share of captions that mention at least one object not in the image."""
    return _div(sum(1 for r in rows if _hallucinated(r)), len(rows))


def chair_i(rows: Rows) -> float:
    """CHAIRi: hallucinated object mentions / all object mentions, pooled over captions."""
    hall, total = _mention_counts(rows)
    return _div(hall, total)


def object_recall(rows: Rows) -> float:
    """Ground-truth objects mentioned / ground-truth objects, pooled over captions (CHAIR's recall and
    AMBER's Cover are the same ratio)."""
    truth = sum(len(set(r["truth"])) for r in rows)
    return _div(sum(len(set(r["truth"]) & set(r["mentioned"])) for r in rows), truth)


def mean_length(rows: Rows) -> float:
    """Mean caption length in words (short captions trivially lower CHAIR, so it is always reported)."""
    return _div(sum(len((r.get("prediction") or "").split()) for r in rows), len(rows))


def length_ratio(rows: Rows) -> float:
    """Mean caption length / mean length of the ground-truth descriptions (`truth_length`): 1.0 = as long as
    the truth; far below 1 means CHAIR is low only because little is said."""
    return _div(sum(len((r.get("prediction") or "").split()) for r in rows),
                sum(r.get("truth_length") or 0 for r in rows))


def well_formed_rate(rows: Rows) -> float:
    return _div(sum(1 for r in rows if r.get("well_formed")), len(rows))


def _generative(rows: Rows) -> list[dict]:
    return [r for r in rows if r.get("kind", "generative") == "generative"]


def _discriminative(rows: Rows) -> list[dict]:
    return [r for r in rows if r.get("kind") == "discriminative"]


def amber_chair(rows: Rows) -> float:
    """AMBER CHAIR x 100: object mentions not in `truth` / object mentions, pooled (as AMBER's script)."""
    return 100 * chair_i(_generative(rows))


def amber_cover(rows: Rows) -> float:
    """AMBER Cover x 100: truth objects mentioned / truth objects, pooled over responses."""
    return 100 * object_recall(_generative(rows))


def amber_hal(rows: Rows) -> float:
    """AMBER Hal x 100: share of responses with at least one hallucinated object."""
    return 100 * chair_s(_generative(rows))


def amber_cog(rows: Rows) -> float:
    """AMBER Cog x 100 (lower is better): annotated `hallu` objects that appear / annotated `hallu` objects,
    pooled over responses."""
    g = _generative(rows)
    return 100 * _div(sum(len(set(r.get("hallu") or ()) & set(r["mentioned"])) for r in g),
                      sum(len(set(r.get("hallu") or ())) for r in g))


def amber_d_f1(rows: Rows) -> float:
    """AMBER discriminative F1 x 100 with "no" as the positive class."""
    return 100 * f1(_discriminative(rows), "no")


def amber_d_accuracy(rows: Rows) -> float:
    return 100 * accuracy(_discriminative(rows))


def amber_d_dimension_f1(dimension: str) -> Callable[[Rows], float]:
    def dim_f1(rows: Rows) -> float:
        return 100 * f1([r for r in _discriminative(rows) if r.get("dimension") == dimension], "no")
    dim_f1.__name__ = f"amber_{dimension}_f1"
    return dim_f1


def amber_score(rows: Rows) -> float:
    """AMBER score = ((100 - CHAIR) + F1) / 2, both in percent (LLaVA-1.5: (100 - 7.8 + 74.7) / 2 = 83.45)."""
    return ((100 - amber_chair(rows)) + amber_d_f1(rows)) / 2


def discriminative_parse_failure_rate(rows: Rows) -> float:
    return parse_failure_rate(_discriminative(rows))


# ---------------------------------------------------------------- judged (MMHal, MM-Vet)

def _judged(rows: Rows) -> list[dict]:
    return [r for r in rows if r.get("score") is not None and not r.get("judge_failed")]


def judge_failure_rate(rows: Rows) -> float:
    return _div(sum(1 for r in rows if r.get("score") is None or r.get("judge_failed")), len(rows))


def mmhal_score(rows: Rows) -> float:
    """MMHal score: mean 0-6 rating over judged items."""
    j = _judged(rows)
    return _div(sum(r["score"] for r in j), len(j))


def mmhal_hallucination_rate(rows: Rows) -> float:
    """MMHal hallucination rate: share of judged items rated below 3 (ratings 0-2 say 'with hallucination')."""
    j = _judged(rows)
    return _div(sum(1 for r in j if r["score"] < 3), len(j))


def mmvet_score(rows: Rows) -> float:
    """MM-Vet total: mean 0-1 correctness x 100 over judged items."""
    j = _judged(rows)
    return 100 * _div(sum(r["score"] for r in j), len(j))


def mmvet_capability(capability: str) -> Callable[[Rows], float]:
    """MM-Vet per-capability score: mean correctness x 100 over judged items that need `capability`."""
    def cap_score(rows: Rows) -> float:
        return mmvet_score([r for r in rows if capability in r.get("capabilities", ())])
    cap_score.__name__ = f"mmvet_{capability}"
    return cap_score
