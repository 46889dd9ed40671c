"""lmms-eval logged samples -> our per-item sample rows (docs/design.md, "Run directory"). Pure Python.

Our own tasks (harness_*) build the row in their process_results (logged under the metric name
`harness_items`); lmms-eval's built-in POPE tasks log their documents and answers, and we build the row here,
reading the answer as POPE's own evaluate.py does (benchmarks.official.pope; lmms-eval accepts only the exact
strings "yes"/"no"). `neither` marks an answer with neither a yes nor a no (still counted, and reported).
"""

from __future__ import annotations

from benchmarks.official import pope as official_pope
from harness.world.texts import degeneration, parse_yes_no

BUILTIN_POPE_SPLITS = {"pope_random": "random", "pope_pop": "popular", "pope_adv": "adversarial",
                       # the same documents read from the data root (benchmarks/tasks/real/harness_pope_*.yaml)
                       "harness_pope_random": "random", "harness_pope_pop": "popular", "harness_pope_adv": "adversarial"}


def pope_row(task: str, sample: dict) -> dict:
    doc = sample.get("doc") or {}
    split = BUILTIN_POPE_SPLITS[task]
    pred = (sample.get("filtered_resps") or [""])[0] or ""
    if isinstance(pred, list):
        pred = pred[0] if pred else ""
    label = str(doc.get("answer", sample.get("target", ""))).strip().lower()
    qid = doc.get("question_id", sample["doc_id"])
    return pope_answer_row(split, qid, doc.get("question", ""), label, pred, image_id=doc.get("image_source"))


def pope_answer_row(split: str, qid, question: str, label: str, pred: str, image_id=None) -> dict:
    parsed, lenient = official_pope.official_yes_no(pred), parse_yes_no(pred)
    return {"id": f"{split}-{qid}", "split": split, "question": question, "prediction": pred,
            "target": label, "label": label, "parsed": parsed, "parsed_lenient": lenient, "correct": parsed == label,
            "neither": lenient is None, "parse_failed": lenient is None, "image_id": image_id,
            "degenerate": degeneration(pred, "real")}


def generic_row(task: str, sample: dict) -> dict:
    """A row for any other lmms-eval task: its prediction, target, the per-sample metric values lmms-eval logged
    (numbers only) and the `degenerate` flag every suite reports. A suite over such a task computes its metrics
    from these fields (or declares its own builder, Suite.rows)."""
    pred = (sample.get("filtered_resps") or [""])[0] or ""
    if isinstance(pred, list):
        pred = pred[0] if pred else ""
    row = {"id": f"{task}-{sample.get('doc_id')}", "task": task, "prediction": str(pred),
           "target": sample.get("target"), "degenerate": degeneration(str(pred), "real")}
    skip = {"doc", "doc_id", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash",
            "target_hash", "input"}
    row.update({k: v for k, v in sample.items() if k not in skip and isinstance(v, (int, float, bool))})
    return row


def rows_from_samples(task: str, samples: list[dict]) -> list[dict]:
    """The default rows builder: our tasks' `harness_items` rows, lmms-eval's POPE rows, else generic rows."""
    if task in BUILTIN_POPE_SPLITS:
        return [pope_row(task, s) for s in samples]
    return [dict(s["harness_items"]) if "harness_items" in s else generic_row(task, s) for s in samples]
