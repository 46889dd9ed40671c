"""lmms-eval hooks for the real-world tasks lmms-eval lacks or scores wrongly (harness_*).

* harness_mmhal / harness_amber_d / harness_object_halbench: what lmms-eval 0.7.3 does not have at all.
  Their documents are JSONL in the benchmarks' own schema (plus `image`: a path relative to this folder's
  data/ directory, or absolute) under data/ next to this file; put the converted files there (see README.md).
* harness_mmvet / harness_amber_g: lmms-eval's own datasets and prompts, but scored by the harness: lmms-eval's
  `mmvet` calls the GPT judge inside process_results (needs OPENAI_API_KEY even to load, scores 0 when the judge
  fails) and `amber_g` needs spaCy + NLTK data and marks Cog higher-is-better.

`process_results` writes our per-item row under the metric name `harness_items` (the lmms-eval metric only
counts rows); every reported number is computed by benchmarks.metrics / benchmarks.official, judged scores by
harness.judges. Objects are found as the benchmarks' own scripts find them (benchmarks.official: AMBER's NLTK
nouns + relation.json + spaCy similarity, CHAIR's synonym list, plural table and two-word objects); a missing NLP
resource stops the task when its prompts are built, before any answer is generated (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from benchmarks.official import amber as official_amber
from benchmarks.official import chair as official_chair
from benchmarks.official import nlp
from harness.errors import HarnessError
from harness.world.texts import degeneration, parse_yes_no

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def _image_path(value) -> Path:
    """Absolute, or relative to the data root (`harness data prepare` writes "<suite>/images/<file>"), else
    relative to data/ next to this file."""
    from harness.data import image_path

    if Path(value).is_absolute():
        return Path(value)
    in_root = image_path(str(value))
    return in_root if in_root.exists() or not (DATA / value).exists() else DATA / value


def _image(value):
    if value is None:
        return []
    if isinstance(value, Image.Image):
        return [value.convert("RGB")]
    path = _image_path(value)
    try:
        with Image.open(path) as im:
            return [im.convert("RGB")]
    except (OSError, ValueError) as e:
        raise RuntimeError(f"corrupt or missing image {path}: {e}") from None


def doc_to_visual(doc):
    return _image(doc.get("image"))


def mmhal_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return doc["question"]


def amber_d_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    # lmms-eval builds every prompt before generating any answer: an unknown type fails here, not after
    official_amber.discriminative_type(doc.get("type"))
    return doc["query"]


def amber_g_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    amber_scorer()      # refuse before generating when AMBER's data or NLP resources are missing
    return "Describe this image."


def mmvet_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}{doc['question']}{kw.get('post_prompt', '')}"


def object_halbench_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    nlp.require_tokenizer()     # CHAIR tokenises with NLTK: refuse before generating when it cannot
    return doc.get("question") or "Please describe this image in detail."


def _pred(results) -> str:
    r = results[0] if results else ""
    return (r[0] if isinstance(r, list) and r else r) or ""


def _broken(pred: str) -> dict:
    """The row's `degenerate` field (empty or a loop; the suites' `degenerate` metric reads it)."""
    return {"degenerate": degeneration(pred, "real")}


def mmhal_process_results(doc, results):
    pred = _pred(results)
    row = {"id": f"mmhal-{doc.get('question_type', '')}-{doc.get('image_id', doc.get('id', ''))}",
           "question": doc["question"], "prediction": pred, "target": doc.get("gt_answer", ""),
           "qtype": doc.get("question_type"), "topic": doc.get("question_topic"),
           "image_content": list(doc.get("image_content") or []), "score": None, "judge_failed": False}
    row.update(_broken(pred))
    return {"harness_items": row}


def amber_d_process_results(doc, results):
    """Scored as AMBER's inference.py scores it (benchmarks.official.amber): only the exact answers "Yes" / "No"
    count (`parsed`); `parsed_lenient` keeps our first-sentence reading for diagnosis."""
    pred = _pred(results)
    label = str(doc["truth"]).strip().lower()
    dimension, subtype = official_amber.discriminative_type(doc.get("type"))
    parsed = official_amber.official_yes_no(pred)
    row = {"id": f"amber-d-{doc['id']}", "kind": "discriminative", "type": doc.get("type"),
           "dimension": dimension, "subtype": subtype, "question": doc["query"], "prediction": pred,
           "target": label, "label": label, "parsed": parsed, "parsed_lenient": parse_yes_no(pred),
           "correct": parsed == label, "parse_failed": parsed is None}
    row.update(_broken(pred))
    return {"harness_items": row}


# AMBER's own data files for the generative scorer (from its repository's data/ folder)
AMBER_RELATION = DATA / "amber" / "relation.json"
AMBER_SAFE_WORDS = DATA / "amber" / "safe_words.txt"
_AMBER_SCORER: dict = {}


def _amber_file(default: Path) -> Path:
    """AMBER's relation.json / safe_words.txt as `harness data prepare amber` put them in the data root, else
    the copy next to this file."""
    from harness.data import suite_dir

    prepared = suite_dir("amber") / default.name
    return prepared if prepared.is_file() else default


def amber_matcher() -> dict:
    """The near-synonym model and threshold (AMBER's defaults; HARNESS_AMBER_SPACY_MODEL /
    HARNESS_AMBER_SIMILARITY choose others, and every row records which)."""
    return {"spacy_model": os.environ.get("HARNESS_AMBER_SPACY_MODEL", nlp.DEFAULT_SPACY_MODEL),
            "similarity": float(os.environ.get("HARNESS_AMBER_SIMILARITY", nlp.DEFAULT_SIMILARITY))}


def amber_scorer() -> official_amber.GenerativeScorer:
    """AMBER's generative scorer; HarnessError when its data or NLP resources are missing (never a fallback)."""
    matcher = amber_matcher()
    key = tuple(matcher.values())
    if key not in _AMBER_SCORER:
        relation, safe_words = _amber_file(AMBER_RELATION), _amber_file(AMBER_SAFE_WORDS)
        for f in (relation, safe_words):
            if not f.is_file():
                raise HarnessError(f"official AMBER scoring needs {f} (AMBER's data/{f.name})")
        association = json.loads(relation.read_text(encoding="utf-8"))
        safe = [line.split("\n")[0] for line in safe_words.read_text(encoding="utf-8").splitlines()]
        nlp.require_amber_nltk()
        similar = nlp.similarity_test(matcher["spacy_model"], matcher["similarity"])
        _AMBER_SCORER[key] = official_amber.GenerativeScorer(association, safe, nlp.amber_nouns, similar)
    return _AMBER_SCORER[key]


def amber_g_row(doc, pred: str, scorer=None) -> dict:
    """`scorer`: an injected GenerativeScorer (tests); default AMBER's, whose model and resources each row records."""
    truth, hallu = list(doc.get("truth") or []), list(doc.get("hallu") or [])
    matcher = amber_matcher()
    if scorer is None:
        scorer = amber_scorer()
        matcher.update(nlp.describe(matcher["spacy_model"]))
    row = {"id": f"amber-g-{doc.get('question_id', doc.get('id'))}", "kind": "generative",
           "question": "Describe this image.", "prediction": pred, "target": ", ".join(truth), "truth": truth,
           "hallu": hallu, "matcher": matcher, **scorer.score(pred, truth, hallu)}
    row.update(_broken(pred))
    return row


def amber_g_process_results(doc, results):
    return {"harness_items": amber_g_row(doc, _pred(results))}


def mmvet_process_results(doc, results):
    pred = _pred(results)
    caps = [c.strip() for c in str(doc.get("capability") or "").split(",") if c.strip()]
    row = {"id": f"mmvet-{doc.get('question_id')}", "question": doc["question"], "prediction": pred,
           "target": doc.get("answer", ""), "capabilities": caps, "score": None, "judge_failed": False}
    row.update(_broken(pred))
    return {"harness_items": row}


def object_halbench_process_results(doc, results):
    """CHAIR as the original chair.py computes it (benchmarks.official.chair)."""
    pred = _pred(results)
    row = {"id": f"ohb-{doc.get('image_id', doc.get('id'))}", "kind": "generative",
           "question": doc.get("question") or "Please describe this image in detail.", "prediction": pred,
           "target": ", ".join(doc.get("truth") or []),
           **official_chair.score_caption(pred, list(doc.get("truth") or []), nlp.word_tokenize,
                                          doc.get("captions") or ()),
           "nlp": nlp.describe()}      # which Punkt parameters tokenised it (docs/benchmarks.md § NLP resources)
    row.update(_broken(pred))
    return {"harness_items": row}


def count_items(items):
    return len(items)
