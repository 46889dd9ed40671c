"""Real-world tasks offline: our task YAMLs + utils on fabricated documents in the benchmarks' real schema,
run through lmms-eval with a tiny random LLaVA; built-in POPE samples re-scored by our rows builder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError

sys.path.insert(0, str(Path(__file__).parent))
from eval_fixtures import build_tiny_llava

REAL = Path(__file__).resolve().parent.parent / "benchmarks" / "tasks" / "real"


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory) -> Path:
    """A copy of benchmarks/tasks/real with fabricated data/ (MMHal, AMBER-d, Object HalBench schemas)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("real")
    for p in REAL.iterdir():
        if p.suffix in (".yaml", ".py"):
            shutil.copy2(p, folder / p.name)
    data = folder / "data"
    data.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200), (30, 200, 30)]):
        Image.new("RGB", (64, 64), colour).save(data / f"img{i}.jpg")
    mmhal = [{"question_type": qt, "question_topic": "Nature", "image_id": f"id{i}", "image_src": "http://x",
              "image_content": ["Tree", "Dog"], "question": "what is in the image ?", "gt_answer": "a dog",
              "model_answer": "", "image": f"img{i % 3}.jpg"} for i, qt in enumerate(["attribute", "counting"])]
    amber_d = [{"id": 1005 + i, "image": f"img{i % 3}.jpg", "query": q, "truth": t, "type": ty} for i, (q, t, ty) in
               enumerate([("Is there a forest in this image?", "no", "discriminative-hallucination"),
                          ("Is the dog running in this image?", "yes", "discriminative-attribute-action"),
                          ("Is the cup on the table?", "no", "discriminative-relation")])]
    ohb = [{"image_id": 139, "image": "img0.jpg", "question": "Please describe this image in detail.",
            "truth": ["dining table", "cup", "person"]}]
    for name, docs in [("mmhal", mmhal), ("amber_d", amber_d), ("object_halbench", ohb)]:
        (data / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return folder


def test_our_real_tasks_run_offline_on_real_schema(real_folder, tmp_path):
    import torch

    from benchmarks.rows import rows_from_samples
    from benchmarks.suites import AMBER, MMHAL, OBJECT_HALBENCH
    from harness.evaluate import metric_values
    from harness.judges.rule import RuleJudge  # noqa: F401  (import check only)
    from harness.lmms_adapter import HarnessVLM, run_tasks
    from harness.models.vlm import load_vlm

    torch.set_num_threads(1)
    model, proc = load_vlm(str(build_tiny_llava(tmp_path / "m")))
    lm = HarnessVLM(model=model, processor=proc, batch_size=4)
    # tiny token budgets: the tasks' own max_new_tokens (512) would only make a random model babble longer
    for y in real_folder.glob("*.yaml"):
        y.write_text(y.read_text().replace("max_new_tokens: 512", "max_new_tokens: 4"))
    tasks = ["harness_mmhal", "harness_amber_d", "harness_object_halbench"]
    out = run_tasks(lm, tasks, include_path=real_folder)
    rows = {t: rows_from_samples(t, out[t]) for t in tasks}
    assert [r["qtype"] for r in rows["harness_mmhal"]] == ["attribute", "counting"]
    assert rows["harness_mmhal"][0]["image_content"] == ["Tree", "Dog"] and rows["harness_mmhal"][0]["score"] is None
    assert [r["dimension"] for r in rows["harness_amber_d"]] == ["existence", "attribute", "relation"]
    assert [r["label"] for r in rows["harness_amber_d"]] == ["no", "yes", "no"]
    assert rows["harness_object_halbench"][0]["truth"] == ["dining table", "cup", "person"]
    # suites compute on these rows (judged ones once scores are set)
    for r, s in zip(rows["harness_mmhal"], (5.0, 1.0)):
        r["score"] = s
    assert metric_values(MMHAL, rows["harness_mmhal"])["score"].value == pytest.approx(3.0)
    mv = metric_values(AMBER, rows["harness_amber_d"])
    assert mv["d_accuracy"].n == 3
    assert metric_values(OBJECT_HALBENCH, rows["harness_object_halbench"])["chair_s"].n == 1


def test_real_utils_on_fabricated_documents():
    import importlib.util

    spec = importlib.util.spec_from_file_location("harness_real_task_utils", REAL / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    v = utils.mmvet_process_results({"question_id": "v1", "question": "q", "answer": "4<OR>four",
                                     "capability": "ocr,math"}, ["4"])["harness_items"]
    assert v["capabilities"] == ["ocr", "math"] and v["score"] is None and v["degenerate"] is None
    loop = utils.mmhal_process_results({"question": "q", "image_id": 1}, ["a dog dog dog dog"])["harness_items"]
    assert loop["degenerate"] == "loop"
    d = utils.amber_d_process_results({"id": 3, "query": "Is there a cat?", "truth": "no",
                                       "type": "discriminative-attribute-number"}, ["No"])
    assert d["harness_items"]["parsed"] == "no" and d["harness_items"]["correct"]
    with pytest.raises(HarnessError):     # AMBER's official types only (tests/test_official.py)
        utils.amber_d_doc_to_text({"query": "q", "type": "discriminative-existence"})


def test_builtin_pope_samples_are_rescored_leniently():
    from benchmarks.rows import rows_from_samples
    from benchmarks.suites import POPE
    from harness.evaluate import metric_values

    def sample(i, answer, resp):
        return {"doc_id": i, "doc": {"question_id": str(i), "question": "Is there a dog in the image?",
                                     "answer": answer, "image_source": "COCO_val2014_1"},
                "target": answer, "filtered_resps": [resp]}
    resps = ["Yes.", "yes", "No, there is none.", "I cannot tell"]
    rows = rows_from_samples("pope_adv", [sample(i, a, r) for i, (a, r) in
                                          enumerate(zip(["yes", "no", "no", "yes"], resps))])
    # POPE's evaluate.py reading (tests/test_official.py): no "no"/"not" word -> yes, even "I cannot tell"
    assert [r["parsed"] for r in rows] == ["yes", "yes", "no", "yes"]
    assert all(r["split"] == "adversarial" for r in rows)
    mv = metric_values(POPE, rows)
    assert mv["adversarial/accuracy"].value == pytest.approx(3 / 4)   # lmms-eval's exact match would give 1/4
    assert mv["adversarial/yes_ratio"].value == pytest.approx(3 / 4)
    assert mv["neither"].value == pytest.approx(1 / 4)
    assert mv["degenerate"].value == 0.0          # an unparsable answer is wrong, not broken
