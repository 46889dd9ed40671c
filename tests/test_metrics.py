"""Every metric formula on hand-computed cases, and POPE against lmms-eval's own aggregation functions."""

from __future__ import annotations

import math

import pytest

from benchmarks import metrics as M


def yn(label, parsed, **kw):
    return {"label": label, "parsed": parsed, "correct": parsed == label, **kw}


# 8 POPE items: tp = 2 (1, 2), fn = 2 (3 said no, 4 unparsed), fp = 1 (5), tn = 3 (6, 7, 8 unparsed)
POPE_ROWS = [yn("yes", "yes"), yn("yes", "yes"), yn("yes", "no"), yn("yes", None),
             yn("no", "yes"), yn("no", "no"), yn("no", "no"), yn("no", None)]


def test_pope_formulas_by_hand():
    assert M.confusion(POPE_ROWS) == (2, 1, 3, 2)
    assert M.accuracy(POPE_ROWS) == pytest.approx(4 / 8)
    assert M.precision(POPE_ROWS) == pytest.approx(2 / 3)
    assert M.recall(POPE_ROWS) == pytest.approx(2 / 4)
    # F1 = 2PR / (P + R) = 2 (2/3)(1/2) / (7/6) = 4/7
    assert M.f1(POPE_ROWS) == pytest.approx(4 / 7)
    assert M.yes_ratio(POPE_ROWS) == pytest.approx(3 / 8)      # predicted yes, not labels (4/8)
    assert M.parse_failure_rate(POPE_ROWS) == pytest.approx(2 / 8)


def test_edge_cases_are_nan_or_zero_not_crashes():
    assert math.isnan(M.accuracy([]))
    assert M.precision([yn("yes", "no")]) == 0.0            # nothing predicted yes: 0, as lmms-eval / sklearn
    assert M.yes_no("f1", "no")([yn("no", "yes")] * 3) == 0.0   # an always-"yes" model has AMBER F1 0
    assert math.isnan(M.f1([]))
    assert M.f1([yn("yes", "no"), yn("no", "yes")]) == 0.0  # P = 0, R = 0


def test_per_split_mean_is_unweighted():
    rows = [yn("yes", "yes", split="random")] + [yn("yes", "no", split="popular")] * 3
    fn = M.per_split_mean(M.accuracy, ("random", "popular", "adversarial"))
    assert fn(rows) == pytest.approx((1.0 + 0.0) / 2)       # empty adversarial split is skipped, not 0


def test_pope_matches_lmms_eval_aggregations_on_parsed_predictions():
    """Same parsed predictions -> same accuracy / precision / recall / F1 as lmms-eval's POPE functions."""
    from lmms_eval.tasks.pope import utils as pope

    rows = [r for r in POPE_ROWS if r["parsed"] is not None] * 3 + [yn("no", "yes"), yn("yes", "yes")]
    lm = [{"question_id": i, "score": float(r["parsed"] == r["label"]), "prediction": r["parsed"],
           "ground_truth": r["label"]} for i, r in enumerate(rows)]
    assert M.accuracy(rows) == pytest.approx(pope.pope_aggregate_accuracy(lm))
    assert M.precision(rows) == pytest.approx(pope.pope_aggregate_precision(lm))
    assert M.recall(rows) == pytest.approx(pope.pope_aggregate_recall(lm))
    assert M.f1(rows) == pytest.approx(pope.pope_aggregate_f1_score(lm))
    # Where we differ on purpose: lmms-eval's yes-ratio counts ground-truth "yes", ours predicted "yes".
    assert pope.pope_aggregate_yes_ratio(lm) == pytest.approx(sum(r["label"] == "yes" for r in rows) / len(rows))
    assert M.yes_ratio(rows) == pytest.approx(sum(r["parsed"] == "yes" for r in rows) / len(rows))
    assert M.yes_ratio(rows) != pytest.approx(pope.pope_aggregate_yes_ratio(lm))


def test_pope_differs_from_lmms_eval_on_unparsed_answers_on_purpose():
    """lmms-eval drops a non-yes/no answer from recall; we count it as a miss (and count the failure)."""
    from lmms_eval.tasks.pope import utils as pope

    lm = [{"score": 1.0, "prediction": "yes", "ground_truth": "yes"},
          {"score": 0.0, "prediction": "maybe", "ground_truth": "yes"}]
    ours = [yn("yes", "yes"), yn("yes", None)]
    assert pope.pope_aggregate_recall(lm) == 1.0
    assert M.recall(ours) == 0.5
    assert M.parse_failure_rate(ours) == 0.5


def test_amber_discriminative_uses_no_as_positive():
    # positive "no": tp = 2, fn = 1 (no -> yes), fp = 1 (yes -> no), tn = 2 (yes -> yes, yes -> unparsed)
    rows = [yn("no", "no"), yn("no", "no"), yn("no", "yes"), yn("yes", "no"), yn("yes", "yes"), yn("yes", None)]
    rows = [{**r, "kind": "discriminative", "dimension": "existence"} for r in rows]
    assert M.confusion(rows, "no") == (2, 1, 2, 1)
    assert M.amber_d_f1(rows) == pytest.approx(100 * 2 / 3)
    # with "yes" as positive the same answers give P = 1/2, R = 1/3, F1 = 0.4: the convention matters
    assert M.yes_no("f1", "yes")(rows) == pytest.approx(0.4)
    assert M.amber_d_dimension_f1("existence")(rows) == pytest.approx(100 * 2 / 3)
    assert math.isnan(M.amber_d_dimension_f1("relation")(rows))    # no relation items at all


AMBER_G = [
    {"kind": "generative", "truth": ["cup", "fork"], "hallu": ["plate"], "mentioned": ["cup", "plate", "cup"],
     "prediction": "a cup a plate a cup"},
    {"kind": "generative", "truth": ["car"], "hallu": ["bus", "sign"], "mentioned": ["car"], "prediction": "a car"},
]


def test_amber_generative_by_hand():
    # mentions pooled with repeats (AMBER's script): cup, plate, cup + car = 4 mentions, 1 hallucinated (plate)
    assert M.amber_chair(AMBER_G) == pytest.approx(100 * 1 / 4)
    assert M.amber_cover(AMBER_G) == pytest.approx(100 * (1 + 1) / (2 + 1))     # pooled: cup, car of 3
    assert M.amber_hal(AMBER_G) == pytest.approx(50.0)
    assert M.amber_cog(AMBER_G) == pytest.approx(100 * (1 + 0) / (1 + 2))      # plate of plate, bus, sign


def test_amber_score_by_hand():
    disc = [{**yn("no", "no"), "kind": "discriminative"}, {**yn("yes", "yes"), "kind": "discriminative"},
            {**yn("no", "yes"), "kind": "discriminative"}]
    # F1(no) : tp 1, fn 1, fp 0 -> P 1, R 1/2, F1 2/3 -> 66.67; CHAIR 25 -> ((100 - 25) + 66.67) / 2
    assert M.amber_score(AMBER_G + disc) == pytest.approx(((100 - 25) + 200 / 3) / 2)
    # the published LLaVA-1.5 example: CHAIR 7.8, F1 74.7 -> 83.45
    assert ((100 - 7.8) + 74.7) / 2 == pytest.approx(83.45)


def test_chair_by_hand():
    rows = [{"truth": ["cup", "fork"], "mentioned": ["cup", "cup", "dog"], "prediction": "a b c d", "truth_length": 8},
            {"truth": ["car"], "mentioned": ["car"], "prediction": "x y", "truth_length": 4, "well_formed": True},
            {"truth": ["tree"], "mentioned": [], "prediction": "", "truth_length": 4}]
    assert M.chair_s(rows) == pytest.approx(1 / 3)
    assert M.chair_i(rows) == pytest.approx(1 / 4)         # mentions cup, cup, dog + car: 1 hallucinated of 4
    assert M.object_recall(rows) == pytest.approx(2 / 4)   # cup, car of cup, fork, car, tree
    assert M.mean_length(rows) == pytest.approx(2.0)
    assert M.length_ratio(rows) == pytest.approx(6 / 16)
    assert M.well_formed_rate(rows) == pytest.approx(1 / 3)


def test_degenerate_rate_reads_the_row_flag_and_every_suite_reports_it():
    from benchmarks.suites import MICRO_DEFAULT, REAL_DEFAULT
    from harness.registry import load
    rows = [{"degenerate": None}, {"degenerate": "loop"}, {"degenerate": "truncated"}, {}]
    assert M.degenerate_rate(rows) == pytest.approx(2 / 4)
    for name in MICRO_DEFAULT + REAL_DEFAULT:
        suite = load("suites", name)
        m = suite.metric("degenerate")
        # version 2 added `degenerate`; the real suites' version 3 scores as the benchmarks' own code
        assert m.direction == "lower" and m.test == "mcnemar" and suite.version in ("2", "3")


def test_judged_metrics_skip_failures():
    rows = [{"score": 6.0}, {"score": 2.0}, {"score": None, "judge_failed": True}, {"score": 3.0}, {"score": 0.0}]
    assert M.mmhal_score(rows) == pytest.approx((6 + 2 + 3 + 0) / 4)     # not / 5 with the failure as 0
    assert M.mmhal_hallucination_rate(rows) == pytest.approx(2 / 4)
    assert M.judge_failure_rate(rows) == pytest.approx(1 / 5)
    vet = [{"score": 1.0, "capabilities": ["rec"]}, {"score": 0.5, "capabilities": ["rec", "ocr"]},
           {"score": None, "judge_failed": True, "capabilities": ["ocr"]}, {"score": 0.0, "capabilities": ["ocr"]}]
    assert M.mmvet_score(vet) == pytest.approx(100 * 1.5 / 3)
    assert M.mmvet_capability("rec")(vet) == pytest.approx(75.0)
    assert M.mmvet_capability("ocr")(vet) == pytest.approx(25.0)


def test_suites_are_registered_and_well_declared():
    from harness.registry import SUITES, load

    for name in SUITES:
        s = load("suites", name)
        assert s.name == name
        assert s.primary in {m.name for m in s.metrics}
        for m in s.metrics:
            assert m.direction in ("higher", "lower") or m.direction.startswith("target:")
            assert (m.test == "mcnemar") == (m.item_key is not None)
    gated = {(n, m.name) for n in SUITES for m in load("suites", n).metrics if m.gated}
    for expected in [("micro-chair", "chair_s"), ("micro-chair", "chair_i"), ("micro-amber", "chair"),
                     ("micro-amber", "hal"), ("micro-pope", "f1"), ("micro-mmhal", "hallucination_rate")]:
        assert expected in gated
    assert load("suites", "micro-amber").metric("cog").direction == "lower"


def test_metric_values_give_ci_and_n():
    from benchmarks.suites import MICRO_POPE
    from harness.evaluate import metric_values

    rows = [{**r, "split": s, "id": f"{s}{i}"} for s in ("random", "popular", "adversarial")
            for i, r in enumerate(POPE_ROWS * 5)]
    mv = metric_values(MICRO_POPE, rows)
    assert mv["accuracy"].n == 120 and mv["random/accuracy"].n == 40
    assert mv["accuracy"].value == pytest.approx(0.5)
    lo, hi = mv["accuracy"].ci
    assert lo < 0.5 < hi and hi - lo < 0.3
    assert mv["yes_ratio"].direction == "target:0.5"


def test_fast_resampling_equals_harness_stats():
    """harness.stats resamples SumMetrics as count vectors: same draws and intervals as re-building row lists
    (a plain function wrapping the metric takes the row-list path)."""
    import random

    from benchmarks.suites import MICRO_AMBER, MICRO_CHAIR, MICRO_POPE
    from harness import stats

    rng = random.Random(0)
    pope = [yn(rng.choice(["yes", "no"]), rng.choice(["yes", "no", None]), split=s, id=f"{s}{i}")
            for s in ("random", "popular", "adversarial") for i in range(40)]
    objs = ["cup", "fork", "dog", "car"]
    gen = [{"kind": "generative", "id": f"g{i}", "truth": rng.sample(objs, 2), "hallu": rng.sample(objs, 1),
            "mentioned": [rng.choice(objs) for _ in range(rng.randint(0, 3))], "prediction": "a b c",
            "truth_length": 4, "well_formed": rng.random() < 0.5} for i in range(60)]
    disc = [{**yn(rng.choice(["yes", "no"]), rng.choice(["yes", "no", None])), "kind": "discriminative",
             "dimension": "existence", "id": f"d{i}"} for i in range(60)]
    for suite, rows in ((MICRO_POPE, pope), (MICRO_AMBER, gen + disc), (MICRO_CHAIR, gen)):
        for m in suite.metrics:
            sel = m.select(rows)
            assert stats.bootstrap_ci(sel, m.fn, n_boot=200) == pytest.approx(
                stats.bootstrap_ci(sel, lambda rs, f=m.fn: f(rs), n_boot=200), nan_ok=True), m.name
    other = [{**r, "parsed": "yes"} for r in pope]
    for m in MICRO_POPE.metrics[:3]:
        fast = stats.paired_bootstrap(pope, other, m.fn, n_boot=200)
        slow = stats.paired_bootstrap(pope, other, lambda rs, f=m.fn: f(rs), n_boot=200)
        assert fast[0] == pytest.approx(slow[0]) and fast[1] == pytest.approx(slow[1]) and fast[2] == pytest.approx(slow[2])
