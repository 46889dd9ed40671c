"""lmms-eval hooks for the micro-world tasks (harness_micro_*).

Documents are JSONL rows written by benchmarks.micro_data next to this file (a copy of it lives in the built task
folder); `image` is a PNG path relative to this file. `process_results` turns (document, answer) into the per-item
sample row the harness writes to samples/<checkpoint>/<suite>.jsonl: the parsed answer, mentioned objects, ...
Judged fields (MMHal, MM-Vet `score`) are filled afterwards by the harness's judge, never here.
The lmms-eval metric `harness_items` only counts rows: every number we report is computed by benchmarks.metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from harness.world.texts import degeneration, is_well_formed, mentioned_objects, parse_yes_no

HERE = Path(__file__).resolve().parent


class CorruptImage(RuntimeError):
    """An image file of a task document is missing or unreadable."""


def doc_to_visual(doc):
    path = HERE / doc["image"]
    try:
        with Image.open(path) as im:
            return [im.convert("RGB")]
    except (OSError, ValueError) as e:
        raise CorruptImage(f"corrupt or missing image {path} (document {doc.get('id')}): {e}") from None


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}{doc['question']}{kw.get('post_prompt', '')}"


def _prediction(results) -> str:
    return (results[0] if results else "") or ""


def _base(doc, pred: str) -> dict:
    return {"id": doc["id"], "question": doc["question"], "prediction": pred, "target": doc["target"],
            "degenerate": degeneration(pred)}


def yes_no_results(doc, results):
    """POPE and AMBER-discriminative items: lenient parse of the first sentence, parse failures kept as None."""
    pred = _prediction(results)
    parsed = parse_yes_no(pred)
    row = {**_base(doc, pred), "label": doc["label"], "parsed": parsed, "correct": parsed == doc["label"],
           "parse_failed": parsed is None}
    for key in ("split", "kind", "dimension", "object", "image_id"):
        if key in doc and doc[key] is not None:
            row[key] = doc[key]
    return {"harness_items": row}


def description_results(doc, results):
    """AMBER-generative and CHAIR items: objects mentioned (in order, with repeats) vs the scene's objects."""
    pred = _prediction(results)
    row = {**_base(doc, pred), "kind": doc.get("kind", "generative"), "truth": json.loads(doc["truth"]),
           "hallu": json.loads(doc.get("hallu") or "[]"), "mentioned": mentioned_objects(pred),
           "well_formed": is_well_formed(pred), "truth_length": len(doc["target"].split()),
           "image_id": doc.get("image_id")}
    return {"harness_items": row}


def judged_results(doc, results):
    """MMHal and MM-Vet items: the row carries the ground truth the rule judge needs; score is set later."""
    pred = _prediction(results)
    row = {**_base(doc, pred), "qtype": doc.get("qtype"), "capabilities": json.loads(doc.get("capabilities") or "[]"),
           "scene": json.loads(doc["scene"]), "meta": json.loads(doc.get("meta") or "{}"),
           "score": None, "judge_failed": False, "image_id": doc.get("image_id")}
    return {"harness_items": row}


def count_items(items):
    return len(items)
