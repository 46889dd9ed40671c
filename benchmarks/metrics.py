"""Benchmark metrics as pure functions of per-item sample rows (no torch, no lmms-eval).

Every metric takes the rows of one suite (dicts as written to samples/<ckpt>/<suite>.jsonl) and returns one float,
so harness.stats can bootstrap it and comparisons can resample it. Definitions follow the benchmarks' official
ones (docs/benchmarks.md); where lmms-eval 0.7.3 differs we say so and why:

* POPE: the yes-ratio is the share of *predicted* "yes" (lmms-eval reports the share of ground-truth "yes",
  always ~0.5); answers are parsed leniently ("Yes." is yes) and an unparseable answer is counted as a parse
  failure that is wrong for accuracy and "not yes" for precision/recall (lmms-eval scores only the exact strings
  "yes"/"no" and silently drops other answers from precision and recall).
* AMBER discriminative: the positive class is "No" (AMBER's own convention; a hallucination-free model says
  "no" to absent objects), so precision/recall/F1 are computed on "no".
* AMBER Cog is lower-is-better (lmms-eval's amber_g marks it higher-is-better).
* A judged row whose judgement failed has `score: None` and `judge_failed: True`: it is skipped here and
  counted as a failure by the evaluator, never scored 0.

Every one of these metrics is a ratio of sums over items (POPE precision = sum tp / sum (tp + fp), CHAIRi =
sum hallucinated mentions / sum mentions, ...). So each is a `SumMetric`: a per-row count vector and a function
of the column sums. Calling it on rows is the definition; `bootstrap_ci` / `paired_bootstrap` below redo
harness.stats' resampling (same generator, same draws, same percentiles) on the count matrix instead of re-running
Python over the rows 1,000 times: 43-49x faster on micro POPE (1,800 rows), AMBER and CHAIR, 5-6x on MMHal and
MM-Vet (scripts/measure_bootstrap.py on the samples of a 2k rm-dpo run, 2-core machine).

Row fields used: `label` / `parsed` ("yes"|"no"|None) for yes/no items, `split`, `kind` (AMBER generative vs
discriminative), `dimension`, `mentioned` (object names in order, with repeats), `truth`, `hallu` (AMBER's
annotated hallucination targets), `prediction`, `truth_length`, `well_formed`, `degenerate`, `score` (judge rating),
`judge_failed`, `capabilities` (MM-Vet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Rows = Sequence[dict]
NAN = float("nan")


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else NAN


class SumMetric:
    """metric(rows) = reduce(sum over rows of features(row)). Column 0 of the features counts the rows the
    metric covers (0 for rows it ignores); a metric over no covered rows is NaN."""

    def __init__(self, name: str, features: Callable[[dict], Sequence[float]], reduce: Callable[[np.ndarray], float],
                 width: int):
        self.__name__ = name
        self.features, self.reduce, self.width = features, reduce, width

    def matrix(self, rows: Rows) -> np.ndarray:
        if not rows:
            return np.zeros((0, self.width))
        return np.asarray([self.features(r) for r in rows], dtype=float)

    def from_sums(self, sums: np.ndarray) -> float:
        return NAN if sums[0] == 0 else float(self.reduce(sums))

    def __call__(self, rows: Rows) -> float:
        return self.from_sums(self.matrix(rows).sum(0)) if rows else NAN

    def __repr__(self) -> str:
        return f"<metric {self.__name__}>"


def masked(metric: SumMetric, keep: Callable[[dict], bool], name: str | None = None) -> SumMetric:
    """`metric` over the rows `keep` accepts (the others contribute zeros)."""
    zeros = (0.0,) * metric.width
    return SumMetric(name or metric.__name__, lambda r: metric.features(r) if keep(r) else zeros,
                     metric.reduce, metric.width)


# ---------------------------------------------------------------- yes/no (POPE, AMBER discriminative)
# features: (items, tp, fp, fn, correct, unparsed, predicted yes)

def _yes_no_features(positive: str) -> Callable[[dict], tuple]:
    def features(r: dict) -> tuple:
        parsed, gold_pos = r.get("parsed"), r["label"] == positive
        pred_pos = parsed == positive
        return (1, pred_pos and gold_pos, pred_pos and not gold_pos, gold_pos and not pred_pos,
                parsed == r["label"], parsed is None, parsed == "yes")
    return features


def _precision(c) -> float:
    return c[1] / (c[1] + c[2]) if c[1] + c[2] else 0.0     # never predicting the positive class: 0, as
                                                            # lmms-eval's POPE and sklearn's zero_division


def _recall(c) -> float:
    return c[1] / (c[1] + c[3]) if c[1] + c[3] else 0.0


def _f1(c) -> float:
    p, r = _precision(c), _recall(c)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


_YES_NO_STATS = {"accuracy": lambda c: c[4] / c[0], "precision": _precision, "recall": _recall, "f1": _f1,
                 "yes_ratio": lambda c: c[6] / c[0], "parse_failure": lambda c: c[5] / c[0]}


def yes_no(stat: str, positive: str = "yes") -> SumMetric:
    """accuracy | precision | recall | f1 | yes_ratio | parse_failure with `positive` as the positive class.
    An unparsed answer is a predicted negative: never a true positive, a false negative on a positive item."""
    return SumMetric(f"{stat}_{positive}", _yes_no_features(positive), _YES_NO_STATS[stat], 7)


accuracy = yes_no("accuracy")
precision = yes_no("precision")
recall = yes_no("recall")
f1 = yes_no("f1")
yes_ratio = yes_no("yes_ratio")             # share of *predicted* yes
parse_failure_rate = yes_no("parse_failure")


def confusion(rows: Rows, positive: str = "yes") -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) with `positive` as the positive class."""
    c = yes_no("accuracy", positive).matrix(rows).sum(0) if rows else np.zeros(7)
    tp, fp, fn = int(c[1]), int(c[2]), int(c[3])
    return tp, fp, int(c[0]) - tp - fp - fn, fn


def per_split_mean(metric: SumMetric, splits: Sequence[str], key: str = "split") -> SumMetric:
    """Unweighted mean of `metric` over the splits that have rows (LLaVA's 'POPE F1 averaged over the three
    splits'); features are the metric's features in one block per split."""
    w, k = metric.width, len(splits)
    index = {s: i for i, s in enumerate(splits)}

    def features(r: dict) -> tuple:
        i = index.get(r.get(key))
        out = [0.0] * (1 + w * k)
        if i is not None:
            out[0] = 1.0
            out[1 + i * w:1 + (i + 1) * w] = metric.features(r)
        return tuple(out)

    def reduce(c) -> float:
        vals = [metric.from_sums(c[1 + i * w:1 + (i + 1) * w]) for i in range(k)]
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else NAN
    return SumMetric(f"{metric.__name__}_split_mean", features, reduce, 1 + w * k)


# ---------------------------------------------------------------- object mentions (CHAIR, AMBER generative)
# features: (captions, captions with a hallucination, hallucinated mentions, mentions, truth objects mentioned,
#            truth objects, annotated hallu objects mentioned, annotated hallu objects, words, truth words,
#            well-formed)

def _mention_features(r: dict) -> tuple:
    truth, mentioned = set(r["truth"]), r["mentioned"]
    hall = sum(1 for o in mentioned if o not in truth)     # mentions counted with repeats, as CHAIR's and
    said = set(mentioned)                                  # AMBER's scripts count every object word
    hallu = set(r.get("hallu") or ())
    return (1, hall > 0, hall, len(mentioned), len(truth & said), len(truth), len(hallu & said), len(hallu),
            len((r.get("prediction") or "").split()), r.get("truth_length") or 0, bool(r.get("well_formed")))


def _mentions(name: str, reduce) -> SumMetric:
    return SumMetric(name, _mention_features, reduce, 11)


chair_s = _mentions("chair_s", lambda c: c[1] / c[0])                  # captions with >= 1 hallucinated object
chair_i = _mentions("chair_i", lambda c: _div(c[2], c[3]))             # hallucinated mentions / mentions
object_recall = _mentions("object_recall", lambda c: _div(c[4], c[5]))  # truth objects mentioned / truth objects
mean_length = _mentions("mean_length", lambda c: c[8] / c[0])          # words per caption
# words / ground-truth description words: 1.0 = as long as the truth; far below 1, CHAIR is low only because
# little is said
length_ratio = _mentions("length_ratio", lambda c: _div(c[8], c[9]))
well_formed_rate = _mentions("well_formed", lambda c: c[10] / c[0])
# share of answers that broke rather than erred (row field `degenerate`: harness.world.texts.degeneration's kind
# or None): empty, a loop, cut off. Any question type, so it covers every output of a suite.
degenerate_rate = SumMetric("degenerate", lambda r: (1, bool(r.get("degenerate"))), lambda c: c[1] / c[0], 2)


def _is_generative(r: dict) -> bool:
    return r.get("kind", "generative") == "generative"


def _is_discriminative(r: dict) -> bool:
    return r.get("kind") == "discriminative"


amber_chair = masked(_mentions("amber_chair", lambda c: 100 * _div(c[2], c[3])), _is_generative)
amber_cover = masked(_mentions("amber_cover", lambda c: 100 * _div(c[4], c[5])), _is_generative)
amber_hal = masked(_mentions("amber_hal", lambda c: 100 * c[1] / c[0]), _is_generative)
amber_cog = masked(_mentions("amber_cog", lambda c: 100 * _div(c[6], c[7])), _is_generative)   # lower is better
amber_d_f1 = masked(SumMetric("amber_d_f1", _yes_no_features("no"), lambda c: 100 * _f1(c), 7), _is_discriminative)
amber_d_accuracy = masked(SumMetric("amber_d_accuracy", _yes_no_features("no"), lambda c: 100 * c[4] / c[0], 7),
                          _is_discriminative)


def amber_d_dimension_f1(dimension: str) -> SumMetric:
    return masked(amber_d_f1, lambda r: _is_discriminative(r) and r.get("dimension") == dimension,
                  f"amber_{dimension}_f1")


def _amber_score_features(r: dict) -> tuple:
    gen = _mention_features(r) if _is_generative(r) else (0,) * 11
    disc = _yes_no_features("no")(r) if _is_discriminative(r) else (0,) * 7
    return (1,) + tuple(gen) + tuple(disc)


def _amber_score(c) -> float:
    gen, disc = c[1:12], c[12:19]
    if gen[0] == 0 or disc[0] == 0:
        return NAN
    return ((100 - 100 * _div(gen[2], gen[3])) + 100 * _f1(disc)) / 2


# AMBER score = ((100 - CHAIR) + F1) / 2, both in percent (LLaVA-1.5: (100 - 7.8 + 74.7) / 2 = 83.45)
amber_score = SumMetric("amber_score", _amber_score_features, _amber_score, 19)


# ---------------------------------------------------------------- judged (MMHal, MM-Vet)
# features: (judged items, sum of scores, ratings below 3, failed judgements)

def _judged_features(r: dict) -> tuple:
    s = r.get("score")
    ok = s is not None and not r.get("judge_failed")
    return (1, s, s < 3, 0) if ok else (0, 0.0, 0, 1)


mmhal_score = SumMetric("mmhal_score", _judged_features, lambda c: c[1] / c[0], 4)                # mean 0-6 rating
mmhal_hallucination_rate = SumMetric("mmhal_hallucination_rate", _judged_features,               # ratings < 3:
                                     lambda c: c[2] / c[0], 4)                                  # 'with hallucination'
mmvet_score = SumMetric("mmvet_score", _judged_features, lambda c: 100 * c[1] / c[0], 4)         # correctness x 100


def judge_failure_rate(rows: Rows) -> float:
    return _div(sum(1 for r in rows if r.get("score") is None or r.get("judge_failed")), len(rows))


def mmvet_capability(capability: str) -> SumMetric:
    """MM-Vet per-capability score: mean correctness x 100 over judged items that need `capability`."""
    return masked(mmvet_score, lambda r: capability in r.get("capabilities", ()), f"mmvet_{capability}")
