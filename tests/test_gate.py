"""`harness gate`: passes an identical re-run, fails a degraded record, exit 2 on mismatched/bad input,
--update writes the reference atomically. Uses the real micro suite definitions (gated metrics declared there)."""

from __future__ import annotations

import json

import pytest
from records_fixtures import (REGISTRY, TOY_POPE_V2, make_eval_record, make_record, micro_suites, rows_for, save,
                              suite_result)

from harness import registry
from harness.cli import main
from harness.gate import Check, checks, gate_cli, tolerance
from harness.record import MetricValue


@pytest.fixture(scope="module")
def suites():
    return micro_suites()


@pytest.fixture(scope="module")
def reference(suites, tmp_path_factory):
    return save(make_record(suites, base_q=0.6, aligned_q=0.85, n=240, compare=False),
                tmp_path_factory.mktemp("ref") / "reference.json")


def test_identical_rerun_passes(reference, tmp_path, suites, capsys):
    rerun = save(make_record(suites, base_q=0.6, aligned_q=0.85, n=240, compare=False),
                 tmp_path / "run" / "record.json")
    assert gate_cli(rerun, reference) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "REGRESSED" not in out and "f1" in out and "chair_i" in out
    assert main(["gate", "--record", str(rerun.parent), "--reference", str(reference)]) == 0   # a run dir works


def test_base_record_against_aligned_reference_fails(reference, tmp_path, suites, capsys):
    # the run "forgot" its training: aligned == base quality
    degraded = save(make_record(suites, base_q=0.6, aligned_q=0.6, n=240, compare=False), tmp_path / "record.json")
    assert gate_cli(degraded, reference) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "REGRESSION" in out
    assert main(["gate", "--record", str(degraded), "--reference", str(reference)]) == 1


def test_flipped_answers_fail_only_the_pope_metric(reference, tmp_path, suites):
    from harness.record import RunRecord
    rec = RunRecord.load(reference)
    flipped = [dict(r, parsed={"yes": "no", "no": "yes"}.get(r["parsed"]), correct=not r["correct"])
               for r in rows_for(suites["micro-pope"], 0.85, 240)]
    rec.checkpoints["aligned"]["micro-pope"] = suite_result(suites["micro-pope"], flipped)
    found, _ = checks(rec, RunRecord.load(reference))
    by = {(c.suite, c.metric): c for c in found}
    assert by[("micro-pope", "f1")].regressed
    assert not by[("micro-chair", "chair_i")].regressed and not by[("micro-chair", "chair_s")].regressed
    assert {c.metric for c in found} == {"f1", "chair_i", "chair_s"}          # exactly the gated ones


def test_improvement_passes(reference, tmp_path, suites):
    better = save(make_record(suites, base_q=0.6, aligned_q=0.95, n=240, compare=False), tmp_path / "record.json")
    assert gate_cli(better, reference) == 0


def test_small_wobble_within_ci_passes_large_drop_fails(reference, tmp_path, suites):
    wobble = save(make_record(suites, base_q=0.6, aligned_q=0.83, n=240, compare=False), tmp_path / "w.json")
    drop = save(make_record(suites, base_q=0.6, aligned_q=0.65, n=240, compare=False), tmp_path / "d.json")
    assert gate_cli(wobble, reference) == 0
    assert gate_cli(drop, reference) == 1


def test_tolerance_formula():
    ref = MetricValue(0.80, [0.78, 0.82], 3000, "higher")          # half-width 0.02
    new = MetricValue(0.79, [0.77, 0.81], 3000, "higher")
    assert tolerance(ref, new, k=1.0, floor_abs=0.0, floor_rel=0.0) == pytest.approx((0.02**2 * 2) ** 0.5)
    assert tolerance(ref, new, k=1.0, floor_abs=0.5, floor_rel=0.0) == 0.5                 # floor wins
    assert tolerance(ref, new, k=0.0, floor_abs=0.0, floor_rel=0.01) == pytest.approx(0.008)
    degenerate = MetricValue(0.0, [0.0, 0.0], 100, "lower")
    assert tolerance(degenerate, degenerate) > 0                                          # never zero


def test_target_direction_and_per_metric_floors(reference, suites):
    from harness.record import RunRecord
    ref = RunRecord.load(reference)
    found, _ = checks(ref, ref, floors={"micro-pope/f1": 0.3})
    f1 = next(c for c in found if c.metric == "f1")
    assert f1.tol == pytest.approx(0.3) and f1.move == 0 and not f1.regressed
    assert isinstance(f1, Check)


def test_eval_records_compare_their_only_checkpoint(tmp_path, suites):
    ref = save(make_eval_record(suites, quality=0.85, checkpoint="model"), tmp_path / "ref.json")
    same = save(make_eval_record(suites, quality=0.85, checkpoint="model"), tmp_path / "same.json")
    worse = save(make_eval_record(suites, quality=0.5, checkpoint="model"), tmp_path / "worse.json")
    assert gate_cli(same, ref) == 0 and gate_cli(worse, ref) == 1


def _exit(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


def test_bad_input_exits_2(reference, tmp_path, suites, capsys, monkeypatch):
    rc, err = _exit(["gate", "--record", str(tmp_path / "missing.json"), "--reference", str(reference)], capsys)
    assert rc == 2 and "not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    rc, err = _exit(["gate", "--record", str(bad), "--reference", str(reference)], capsys)
    assert rc == 2 and "malformed" in err
    # mismatched suites: a record of other suites than the reference
    for k, v in REGISTRY.items():
        monkeypatch.setitem(registry.SUITES, k, v)
    toy = save(make_record(compare=False), tmp_path / "toy.json")
    rc, err = _exit(["gate", "--record", str(toy), "--reference", str(reference)], capsys)
    assert rc == 2 and "lacks suite" in err and "micro-pope" in err
    # same suite, other version (one no registered suite has)
    v2 = save(make_record({"micro-pope": TOY_POPE_V2.__class__(**{**TOY_POPE_V2.__dict__, "name": "micro-pope",
                                                                  "version": "99"}),
                           "micro-chair": suites["micro-chair"]}, compare=False), tmp_path / "v2.json")
    rc, err = _exit(["gate", "--record", str(v2), "--reference", str(reference)], capsys)
    assert rc == 2 and "version" in err
    # different worlds
    real = json.loads(reference.read_text())
    real["world"] = "real"
    (tmp_path / "real.json").write_text(json.dumps(real))
    rc, err = _exit(["gate", "--record", str(tmp_path / "real.json"), "--reference", str(reference)], capsys)
    assert rc == 2 and "world" in err
    # a reference without any gated metric checks nothing: refused, never a silent pass
    monkeypatch.setitem(registry.SUITES, "toy-pope", "records_fixtures:TOY_POPE_UNGATED")
    import records_fixtures
    monkeypatch.setattr(records_fixtures, "TOY_POPE_UNGATED", _ungated(records_fixtures.TOY_POPE), raising=False)
    only_pope = make_record({"toy-pope": records_fixtures.TOY_POPE}, compare=False)
    p = save(only_pope, tmp_path / "ungated.json")
    rc, err = _exit(["gate", "--record", str(p), "--reference", str(p)], capsys)
    assert rc == 2 and "nothing to gate" in err


def _ungated(suite):
    from dataclasses import replace
    return replace(suite, metrics=tuple(replace(m, gated=False) for m in suite.metrics))


def test_update_writes_reference_and_reports_changes(reference, tmp_path, suites, capsys):
    new_ref = tmp_path / "refs" / "micro.json"
    first = save(make_record(suites, base_q=0.6, aligned_q=0.8, n=240, compare=False), tmp_path / "first.json")
    assert gate_cli(first, new_ref, update=True) == 0
    assert "no previous reference" in capsys.readouterr().out
    assert new_ref.read_bytes() == first.read_bytes()
    second = save(make_record(suites, base_q=0.6, aligned_q=0.9, n=240, compare=False), tmp_path / "second.json")
    assert main(["gate", "--record", str(second), "--reference", str(new_ref), "--update"]) == 0
    out = capsys.readouterr().out
    assert "old -> new" in out and "f1" in out and "+0." in out
    assert new_ref.read_bytes() == second.read_bytes()
    assert not [p for p in new_ref.parent.iterdir() if p.name.endswith(".tmp")]
    assert gate_cli(second, new_ref) == 0


def test_undefined_metric_in_record_is_a_regression_in_reference_bad_input(reference, tmp_path, capsys):
    from harness.record import RunRecord
    rec = RunRecord.load(reference)
    rec.checkpoints["aligned"]["micro-pope"].metrics["f1"].value = float("nan")
    nan_path = save(rec, tmp_path / "nan.json")
    assert gate_cli(nan_path, reference) == 1
    assert "metric undefined" in capsys.readouterr().out
    rc, err = _exit(["gate", "--record", str(reference), "--reference", str(nan_path)], capsys)
    assert rc == 2 and "cannot serve as a reference" in err
