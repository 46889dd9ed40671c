"""Stage 6 — response reward: one scalar per (image, question, response).

Paper: ArmoRM-Llama3-8B, text only: it never sees the image. micro: the zoo's image-aware `micro-rm`
(a LLaVA backbone with a scalar head trained on ground-truth-labelled preferences) or its image-blind twin
`micro-rm-blind` (`reward=image-blind`), both through harness.models.reward.load_reward_model, which also
loads a real AutoModelForSequenceClassification RM. A non-finite score stops the run: a NaN would silently
decide which answer is "chosen".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import HarnessError

MICRO_MODELS = {"image-aware": "micro-rm", "image-blind": "micro-rm-blind"}


@dataclass
class ResponseRewardConfig:
    reward: str = "image-aware"      # "image-aware" | "image-blind" (micro names), ignored when model is set
    model: str = ""                  # explicit RM (zoo name or local directory), e.g. an ArmoRM-style RM
    batch_size: int = 128


def model_name(cfg: ResponseRewardConfig) -> str:
    if cfg.model:
        return cfg.model
    if cfg.reward not in MICRO_MODELS:
        raise HarnessError(f"unknown reward {cfg.reward!r} (known: {', '.join(MICRO_MODELS)})")
    return MICRO_MODELS[cfg.reward]


def score_responses(cfg: ResponseRewardConfig, images: list, questions: list[str],
                    responses: list[list[dict]]) -> list[list[float]]:
    """Scores shaped like `responses` (one list per item)."""
    from harness.models.reward import load_reward_model

    name = model_name(cfg)
    rm = load_reward_model(name)
    flat_img, flat_q, flat_r = [], [], []
    for img, q, rs in zip(images, questions, responses):
        for r in rs:
            flat_img.append(img)
            flat_q.append(q)
            flat_r.append(r["text"])
    scores = rm.score(flat_img if rm.image_aware else None, flat_q, flat_r, batch_size=cfg.batch_size)
    if len(scores) != len(flat_r):
        raise HarnessError(f"reward model {name!r} returned {len(scores)} scores for {len(flat_r)} responses")
    bad = [i for i, s in enumerate(scores) if s is None or not math.isfinite(float(s))]
    if bad:
        i = bad[0]
        raise HarnessError(f"reward model {name!r} returned a non-finite score ({scores[i]}) for {len(bad)} of "
                           f"{len(scores)} responses, e.g. response {flat_r[i]!r} to {flat_q[i]!r}; "
                           "refusing to select pairs from it")
    out, k = [], 0
    for rs in responses:
        out.append([float(s) for s in scores[k:k + len(rs)]])
        k += len(rs)
    return out
