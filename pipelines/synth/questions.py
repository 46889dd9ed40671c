"""Stage 4 — one instruction question per kept image, about the scene of its prompt.

micro: "describe this image ." with probability `describe_share`, else one question drawn from the world's
question generators for the image's (drawn) scene — existence questions with present and absent (often
co-occurring) objects, colour, size, count, position, spatial relation, OCR. real: the paper had an LLM write
the questions: `backend: llm` asks one per image of the judge's OpenAI-compatible client, given the image's
prompt (pipelines/synth/llm.py; cached, bad replies retried); `template` picks from a fixed list of
detailed-description / reasoning instructions by a seeded draw (or an LLM-written file, `questions.path`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

REAL_TEMPLATES = (
    "Describe this image in detail.",
    "What is happening in this image? Describe the main objects and their relations.",
    "Describe the objects in this image, their colours and positions.",
    "What stands out in this image, and why?",
    "Write a detailed description of the scene shown in the image.",
)


@dataclass
class QuestionsConfig:
    backend: str = "micro"            # "micro" | "template" | "llm"
    describe_share: float = 0.7       # micro: share of "describe this image ." instructions
    path: str = ""                    # template: optional JSON list of instruction strings
    llm_model: str = ""               # llm: empty = the judge's model/endpoint (filled in: config, record, key)
    llm_url: str = ""

    def __post_init__(self):
        if self.backend == "llm":
            from pipelines.synth.prompts import llm_identity
            self.llm_model, self.llm_url = llm_identity(self.llm_model, self.llm_url)


def make_question(cfg: QuestionsConfig, row: dict, seed: int) -> dict:
    """{"question", "kind"} for one kept image row (deterministic in seed and the row id)."""
    rng = random.Random(f"question:{seed}:{row['id']}")
    if cfg.backend == "micro":
        from harness.world.scene import Scene
        from harness.world.texts import describe_qa, sample_questions
        scene = Scene.from_dict(row["scene"])
        if rng.random() < cfg.describe_share:
            qa = describe_qa(scene)
        else:
            qa = rng.choice(sample_questions(scene, rng))
        return {"question": qa.question, "kind": qa.kind}
    if cfg.backend == "template":
        templates = _templates(cfg)
        return {"question": templates[rng.randrange(len(templates))], "kind": "instruction"}
    if cfg.backend == "llm":
        from pipelines.synth.llm import write_question
        return {"question": write_question(row["prompt"], cfg.llm_model, url=cfg.llm_url), "kind": "instruction"}
    raise HarnessError(f"unknown questions.backend {cfg.backend!r} (known: micro, template, llm)")


def _templates(cfg: QuestionsConfig) -> tuple[str, ...]:
    if not cfg.path:
        return REAL_TEMPLATES
    p = Path(cfg.path)
    try:
        items = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise HarnessError(f"questions.path {cfg.path}: {e}") from None
    if not isinstance(items, list) or not items or not all(isinstance(q, str) and q.strip() for q in items):
        raise HarnessError(f"questions.path {cfg.path}: must be a non-empty JSON list of strings")
    return tuple(items)
