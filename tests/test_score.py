"""`harness score`: saved answers re-scored by the suites' own code; the round trip (a finished evaluation's
samples give identical record values) and every kind of id mismatch counted and reported, never dropped."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from eval_fixtures import build_tiny_llava


@pytest.fixture(scope="module")
def micro_pope_answers(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Answers to every micro-pope item (alternating clean and messy yes/no) as a predictions file."""
    from harness.registry import load
    from harness.score import _rows_for

    os.environ.setdefault("HARNESS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    answers = ["yes .", "no .", "Yes, there is.", "maybe", ""]
    built = _rows_for(load("suites", "micro-pope"), "harness_micro_pope",
                      lambda key: answers[sum(map(ord, key)) % len(answers)])
    rows = [{"id": key, "prediction": row["prediction"]} for key, row in built]
    path = tmp_path_factory.mktemp("answers") / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


@pytest.fixture(scope="module")
def finished_eval(tmp_path_factory):
    """A tiny LLaVA evaluated on micro-pope and micro-mmhal (rule judge), 6 items per task."""
    import torch

    from harness.evaluate import evaluate_checkpoint

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("score")
    os.environ.setdefault("HARNESS_CACHE_DIR", str(root / "cache"))
    model = build_tiny_llava(root / "model")
    results = evaluate_checkpoint(str(model), suites=["micro-pope", "micro-mmhal"], out_dir=root / "ev", limit=6,
                                  progress=False)
    return root, results


def _score(tmp_path, suite, predictions, *extra):
    from harness.cli import main

    out = tmp_path / f"out-{suite}"
    code = main(["score", "--suite", suite, "--predictions", str(predictions), "--out", str(out), *extra])
    return code, out


def test_scored_samples_rescore_to_the_same_record(micro_pope_answers, tmp_path, capsys):
    """Fast tier: answers scored, then the written samples scored again -> the same metric values."""
    from harness.record import RunRecord

    path, rows = micro_pope_answers
    code, first = _score(tmp_path, "micro-pope", path)
    assert code == 0
    code, second = _score(tmp_path / "again", "micro-pope", first / "samples" / "scored" / "micro-pope.jsonl")
    assert code == 0
    a, b = (RunRecord.load(d / "record.json").checkpoints["scored"]["micro-pope"] for d in (first, second))
    assert a.metrics == b.metrics and a.metrics["f1"].n == len(rows) == 1800
    assert a.failures["parse"] > 0 and a.failures["missing"] == a.failures["unknown"] == 0


@pytest.mark.slow       # a real evaluation through lmms-eval first (~40 s on a shared 2-core machine)
def test_round_trip_gives_identical_record_values(finished_eval, tmp_path, capsys):
    from harness.record import RunRecord

    root, results = finished_eval
    for suite in ("micro-pope", "micro-mmhal"):
        samples = root / "ev" / "samples" / "base" / f"{suite}.jsonl"
        code, out = _score(tmp_path, suite, samples, "--partial")     # --limit 12: the other items are missing
        assert code == 0
        record = RunRecord.load(out / "record.json")
        result = record.checkpoints["scored"][suite]
        assert result.failures["unknown"] == 0 and result.failures["missing"] > 0
        for name, value in results[suite].metrics.items():
            again = result.metrics[name]
            assert (again.value, again.ci, again.n) == (value.value, value.ci, value.n) or \
                (value.value != value.value and again.value != again.value), (suite, name)
        rescored = [json.loads(line) for line in (out / "samples" / "scored" / f"{suite}.jsonl").open()]
        original = [json.loads(line) for line in samples.open()]
        assert [r["id"] for r in rescored] == [r["id"] for r in original]
        assert [r.get("score") for r in rescored] == [r.get("score") for r in original]


def test_mismatched_ids_are_counted_and_refused(micro_pope_answers, tmp_path, capsys):
    _, rows = micro_pope_answers
    rows = rows[:40]
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"id": r["id"], "prediction": r["prediction"]}) + "\n" for r in rows))
    code, _ = _score(tmp_path, "micro-pope", good)               # a subset without --partial: refused
    assert code == 2 and "items have no answer" in capsys.readouterr().err

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(good.read_text() + json.dumps({"id": "random-nope", "prediction": "yes"}) + "\n")
    code, _ = _score(tmp_path, "micro-pope", unknown, "--partial")
    assert code == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["unknown"] == 1 and stats["items"] == len(rows)

    dup = tmp_path / "dup.jsonl"
    dup.write_text(good.read_text() + json.dumps({"id": rows[0]["id"], "prediction": "no"}) + "\n")
    code, _ = _score(tmp_path, "micro-pope", dup, "--partial")
    assert code == 2 and "more than once" in capsys.readouterr().err

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question_id": 1, "text": "yes"}) + "\n")
    code, _ = _score(tmp_path, "micro-pope", bad)
    assert code == 2 and "expected an object with 'id'" in capsys.readouterr().err


def _real_task_folder(tmp_path, yaml_name: str, data_name: str, docs: list[dict]) -> Path:
    import shutil

    real = Path(__file__).resolve().parent.parent / "benchmarks" / "tasks" / "real"
    folder = tmp_path / "real"
    (folder / "data").mkdir(parents=True)
    for name in (yaml_name, "utils.py"):
        shutil.copy2(real / name, folder / name)
    (folder / "data" / data_name).write_text("".join(json.dumps(d) + "\n" for d in docs))
    return folder


def test_score_reads_amber_response_files_with_amber_ids(tmp_path, capsys):
    """AMBER's own response format (a JSON list of {id, response}, ids as in annotations.json) scored by
    `harness score` gives inference.py's printed numbers (tests/golden/amber_d.json)."""
    import dataclasses

    from benchmarks.suites import AMBER
    from harness.score import read_predictions, score_rows

    golden = json.loads((Path(__file__).parent / "golden" / "amber_d.json").read_text())
    docs = [{"id": it["id"], "image": "x.jpg", "query": "q", "truth": it["truth"], "type": it["type"]}
            for it in golden["items"]]
    folder = _real_task_folder(tmp_path, "harness_amber_d.yaml", "amber_d.jsonl", docs)
    suite = dataclasses.replace(AMBER, tasks=("harness_amber_d",), include=folder)
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps([{"id": it["id"], "response": it["response"]} for it in golden["items"]]))
    answers, duplicates = read_predictions(responses)
    rows, mismatch = score_rows(suite, answers)
    assert not duplicates and mismatch == {"missing": 0, "unknown": 0}
    values = suite.compute(rows)
    assert f"{values['d_f1']:.1f}" == golden["official_output"]["all"]["f1"]
    assert f"{values['existence_f1']:.1f}" == golden["official_output"]["existence"]["f1"]


def test_score_reproduces_the_official_chair_on_saved_captions(tmp_path):
    """harness score's path (documents + the task's own process_results) on the CHAIR golden captions gives
    chair.py's CHAIRs / CHAIRi (tests/golden/chair.json)."""
    import dataclasses

    from benchmarks.official import nlp
    from benchmarks.suites import OBJECT_HALBENCH
    from harness.errors import HarnessError
    from harness.score import score_rows

    try:
        nlp.require_tokenizer()
    except HarnessError as e:
        pytest.skip(str(e))
    golden = json.loads((Path(__file__).parent / "golden" / "chair.json").read_text())
    docs = [{"image_id": it["image_id"], "image": "x.jpg", "question": "Describe.", "truth": it["truth"]}
            for it in golden["items"]]
    folder = _real_task_folder(tmp_path, "harness_object_halbench.yaml", "object_halbench.jsonl", docs)
    suite = dataclasses.replace(OBJECT_HALBENCH, include=folder)
    rows, mismatch = score_rows(suite, {f"ohb-{it['image_id']}": it["caption"] for it in golden["items"]})
    assert mismatch == {"missing": 0, "unknown": 0}
    values = suite.compute(rows)
    assert repr(values["chair_s"]) == golden["official_output"]["CHAIRs"]
    assert repr(values["chair_i"]) == golden["official_output"]["CHAIRi"]


def test_score_reads_task_yamls_that_include_ours(tmp_path):
    """The data root's generated YAMLs (harness.data.task_dir) `include:` our task and replace its data files:
    harness score merges them as lmms-eval does, so the scoring functions are ours and the documents theirs."""
    import dataclasses

    from benchmarks.suites import AMBER
    from harness.score import score_rows

    real = Path(__file__).resolve().parent.parent / "benchmarks" / "tasks" / "real"
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": 1005, "image": "x.jpg", "query": "q", "truth": "no", "type": "relation"}) + "\n")
    (tmp_path / "harness_amber_d.yaml").write_text(
        f"include: {real / 'harness_amber_d.yaml'}\ntask: harness_amber_d\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {docs}\ntest_split: test\n")
    suite = dataclasses.replace(AMBER, tasks=("harness_amber_d",), include=tmp_path)
    rows, mismatch = score_rows(suite, {"1005": "No"})
    assert mismatch == {"missing": 0, "unknown": 0}
    assert rows[0]["id"] == "amber-d-1005" and rows[0]["dimension"] == "relation" and rows[0]["correct"]
