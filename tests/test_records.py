"""compare_suite (test choice, significance, identity) and the before/after / eval tables."""

from __future__ import annotations

import io
import json
import math

import pytest
from records_fixtures import TOY_CHAIR, TOY_POPE, make_eval_record, make_record, micro_suites, rows_for

from harness.compare import compare_metric, compare_suite
from harness.errors import HarnessError
from harness.record import RunRecord
from harness.suite import Metric, Suite
from harness.tables import (before_after_markdown, eval_markdown, print_before_after, print_eval, significance,
                            verdict)

N_BOOT = 200


def test_mcnemar_for_declared_metrics_bootstrap_otherwise():
    comps = compare_suite(TOY_POPE, rows_for(TOY_POPE, 0.7), rows_for(TOY_POPE, 0.8), n_boot=N_BOOT)
    assert comps["accuracy"].test == "mcnemar"
    assert comps["adversarial_accuracy"].test == "mcnemar"
    assert comps["f1"].test == "paired-bootstrap"
    assert comps["yes_ratio"].test == "paired-bootstrap"
    assert comps["accuracy"].direction == "higher" and comps["yes_ratio"].direction == "target:0.5"


def test_mcnemar_p_is_the_exact_binomial_on_discordant_items():
    from scipy.stats import binomtest
    base, aligned = rows_for(TOY_POPE, 0.6), rows_for(TOY_POPE, 0.75)
    comp = compare_suite(TOY_POPE, base, aligned, n_boot=N_BOOT)["accuracy"]
    b = sum(1 for x, y in zip(base, aligned) if x["correct"] and not y["correct"])
    c = sum(1 for x, y in zip(base, aligned) if y["correct"] and not x["correct"])
    assert c > 0
    assert comp.p_value == pytest.approx(binomtest(c, b + c, 0.5).pvalue)
    acc = lambda rows: sum(r["correct"] for r in rows) / len(rows)  # noqa: E731
    assert comp.delta == pytest.approx(acc(aligned) - acc(base))
    assert comp.ci[0] <= comp.delta <= comp.ci[1]


def test_big_fabricated_improvement_is_significant_with_the_right_sign():
    pope = compare_suite(TOY_POPE, rows_for(TOY_POPE, 0.55), rows_for(TOY_POPE, 0.9), n_boot=N_BOOT)
    chair = compare_suite(TOY_CHAIR, rows_for(TOY_CHAIR, 0.4), rows_for(TOY_CHAIR, 0.9), n_boot=N_BOOT)
    assert pope["accuracy"].delta > 0.25 and pope["accuracy"].p_value < 1e-6
    assert pope["accuracy"].ci[0] > 0
    # CHAIR is lower-is-better: the delta is negative and its CI excludes 0
    assert chair["chair_i"].delta < 0 and chair["chair_i"].ci[1] < 0 and chair["chair_i"].p_value < 0.01


def test_identical_rows_give_zero_delta_and_p_one():
    rows = rows_for(TOY_POPE, 0.7)
    for comp in compare_suite(TOY_POPE, rows, [dict(r) for r in rows], n_boot=N_BOOT).values():
        assert comp.delta == 0 and comp.p_value == 1.0 and comp.ci == [0.0, 0.0]
    for comp in compare_suite(TOY_CHAIR, rows_for(TOY_CHAIR, 0.7), rows_for(TOY_CHAIR, 0.7), n_boot=N_BOOT).values():
        assert comp.delta == 0 and comp.p_value == 1.0


def test_rows_filter_restricts_the_comparison():
    base, aligned = rows_for(TOY_POPE, 0.7), rows_for(TOY_POPE, 0.7)
    # improve only the non-adversarial items: the adversarial metric must not move
    for a in aligned:
        if a["split"] != "adversarial":
            a["correct"], a["parsed"] = True, a["label"]
    comps = compare_suite(TOY_POPE, base, aligned, n_boot=N_BOOT)
    assert comps["accuracy"].delta > 0.05 and comps["accuracy"].p_value < 0.01
    assert comps["adversarial_accuracy"].delta == 0 and comps["adversarial_accuracy"].p_value == 1.0


def test_pairs_by_id_not_by_position():
    base = rows_for(TOY_POPE, 0.7)
    shuffled = list(reversed([dict(r) for r in base]))
    comp = compare_suite(TOY_POPE, base, shuffled, n_boot=N_BOOT)["accuracy"]
    assert comp.delta == 0 and comp.p_value == 1.0


def test_unparsed_answer_counts_as_not_correct_in_mcnemar():
    m = Metric("acc", "higher", lambda rows: sum(bool(r.get("correct")) for r in rows) / len(rows),
               test="mcnemar", item_key="correct")
    base = [{"id": i, "correct": True} for i in range(12)]
    aligned = [{"id": i} for i in range(12)]          # key missing: unparsable, never skipped
    comp = compare_metric(m, base, aligned, n_boot=N_BOOT)
    assert comp.delta == -1.0 and comp.p_value < 0.001


def test_no_shared_items_and_bad_declarations():
    comp = compare_metric(TOY_POPE.metric("accuracy"), rows_for(TOY_POPE, 0.7),
                          [dict(r, id="other" + r["id"]) for r in rows_for(TOY_POPE, 0.7)], n_boot=N_BOOT)
    assert math.isnan(comp.delta) and comp.p_value is None
    bad = Metric("acc", "higher", lambda rows: 0.0, test="mcnemar")
    with pytest.raises(HarnessError, match="item_key"):
        compare_metric(bad, [{"id": 1}], [{"id": 1}])


def test_real_suite_definitions_compare():
    suites = micro_suites()
    pope = suites["micro-pope"]
    comps = compare_suite(pope, rows_for(pope, 0.6), rows_for(pope, 0.85), n_boot=N_BOOT)
    assert set(comps) == {m.name for m in pope.metrics}
    assert comps["accuracy"].test == "mcnemar" and comps["f1"].test == "paired-bootstrap"
    assert comps["f1"].delta > 0 and comps["f1"].p_value < 0.01


def test_verdict_and_significance_follow_declared_direction():
    assert verdict("lower", 10.0, 8.0) == "better" and verdict("higher", 10.0, 8.0) == "worse"
    assert verdict("target:0.5", 0.7, 0.55) == "better" and verdict("target:0.5", 0.5, 0.6) == "worse"
    chair = compare_suite(TOY_CHAIR, rows_for(TOY_CHAIR, 0.4), rows_for(TOY_CHAIR, 0.9), n_boot=N_BOOT)["chair_i"]
    assert significance(chair, 20.0, 5.0).endswith("better")
    assert significance(chair, 20.0, 5.0).startswith("*")


# ---------------------------------------------------------------- tables

@pytest.fixture(scope="module")
def run_record() -> RunRecord:
    return make_record(base_q=0.6, aligned_q=0.85)


def test_before_after_markdown_has_every_metric_and_marks(run_record):
    md = before_after_markdown(run_record)
    assert "toy-pope v1" in md and "toy-chair v1" in md
    assert "**accuracy ↑ (primary)**" in md and "chair_i ↓" in md and "yes_ratio →0.5" in md
    assert "*** better" in md                        # the fabricated improvement is significant
    assert "(McN)" in md and "(boot)" in md
    assert "parse " in md                            # failures are shown, with base→aligned counts
    assert "simulator" in md                         # the micro-world caveat
    for m in ("accuracy", "f1", "yes_ratio", "adversarial_accuracy", "chair_i", "chair_s", "cover"):
        assert f"| {m} " in md or f"**{m} " in md
    # round trip through JSON (what re-tabulating from record.json does) gives the same table
    again = RunRecord.from_dict(json.loads(json.dumps(run_record.to_dict())))
    assert before_after_markdown(again) == md


def test_worse_run_is_marked_worse(run_record):
    worse = make_record(base_q=0.85, aligned_q=0.6)
    md = before_after_markdown(worse)
    rows = {line.split("|")[2].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "*** worse" in rows["**accuracy ↑ (primary)**"]
    assert "worse" in rows["**chair_i ↓ (primary)**"]      # lower-is-better metric that went up


def test_rich_tables_render(run_record):
    from rich.console import Console
    buf = io.StringIO()
    print_before_after(run_record, Console(file=buf, width=100, color_system=None))
    out = buf.getvalue()
    assert "toy-pope v1" in out and "accuracy ↑" in out and "better" in out and "McN" in out
    buf = io.StringIO()
    print_eval(make_eval_record(), Console(file=buf, width=100, color_system=None))
    assert "0.7" in buf.getvalue() and "toy-chair v1" in buf.getvalue()


def test_eval_markdown_single_checkpoint():
    rec = make_eval_record(quality=0.7)
    md = eval_markdown(rec)
    assert "eval of micro-llava" in md and "value [95% CI]" in md and "**accuracy ↑ (primary)**" in md
    assert before_after_markdown(rec) == md     # an eval record falls back to the single-checkpoint table


def test_real_suite_record_tables_hide_details_in_terminal_only():
    from rich.console import Console
    rec = make_record(micro_suites(), n=90)
    md = before_after_markdown(rec)
    assert "adversarial/f1" in md
    buf = io.StringIO()
    print_before_after(rec, Console(file=buf, width=160, color_system=None))
    assert "adversarial/f1" not in buf.getvalue() and "not shown here" in buf.getvalue()


def test_empty_suite_set_is_harmless():
    rec = RunRecord(kind="run", method="x", checkpoints={"base": {}, "aligned": {}})
    assert "| suite" in before_after_markdown(rec)
    with pytest.raises(HarnessError):
        eval_markdown(RunRecord(kind="eval", checkpoints={}))


def test_tables_are_pure_python():
    """tables/compare import no torch (checked in a clean interpreter)."""
    import subprocess
    import sys
    code = ("import sys, harness.tables, harness.compare, harness.leaderboard, harness.gate, harness.listing; "
            "bad=[m for m in ('torch','transformers','lmms_eval') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_suite_objects_used_here_are_suites():
    assert isinstance(TOY_POPE, Suite) and TOY_POPE.metric("accuracy").test == "mcnemar"


def test_git_commit_marks_uncommitted_code_dirty(tmp_path):
    import subprocess

    from harness.record import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "m.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    sha = git_commit(tmp_path)
    assert sha and len(sha) == 40
    (tmp_path / "README.md").write_text("edited\n")             # docs do not change a result
    assert git_commit(tmp_path) == sha
    (tmp_path / "harness" / "m.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == sha + "-dirty"
