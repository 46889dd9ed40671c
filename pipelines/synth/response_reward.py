"""Stage 6 — response reward: one scalar per (image, question, response).

Paper: ArmoRM-Llama3-8B, text only: it never sees the image. It ships its own model code, so it loads only with
`trust_remote_code: true` in this config (printed when used; the config is in the run record) and scores with
its card's preference score (`output.score`). micro: the zoo's image-aware `micro-rm`
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
    model: str = ""                  # explicit RM (zoo name, local directory or hub id), e.g. ArmoRM
    trust_remote_code: bool = False  # per-model opt-in to run the RM's own model code (ArmoRM needs it)
    batch_size: int = 128
    workers: int = 1                 # parallel scoring processes, 1 torch thread each


def model_name(cfg: ResponseRewardConfig) -> str:
    if cfg.model:
        return cfg.model
    if cfg.reward not in MICRO_MODELS:
        raise HarnessError(f"unknown reward {cfg.reward!r} (known: {', '.join(MICRO_MODELS)})")
    return MICRO_MODELS[cfg.reward]


def _score_chunk(args) -> list[float]:
    name, images, questions, responses, batch_size, remote_code = args
    import torch
    from PIL import Image

    from harness.models.reward import load_reward_model
    torch.set_num_threads(1)
    rm = load_reward_model(name, trust_remote_code=remote_code)
    imgs = None
    if rm.image_aware:
        imgs = []
        for im in images:
            if isinstance(im, str):
                with Image.open(im) as f:
                    im = f.convert("RGB")
            imgs.append(im)
    # score in order of response length so padded batches waste little, then restore the order
    order = sorted(range(len(responses)), key=lambda i: (len(responses[i]), i))
    scores = rm.score([imgs[i] for i in order] if imgs is not None else None, [questions[i] for i in order],
                      [responses[i] for i in order], batch_size=batch_size)
    if len(scores) != len(responses):
        raise HarnessError(f"reward model {name!r} returned {len(scores)} scores for {len(responses)} responses")
    out = [0.0] * len(responses)
    for i, s in zip(order, scores):
        out[i] = s
    return out


def score_responses(cfg: ResponseRewardConfig, images: list, questions: list[str],
                    responses: list[list[dict]]) -> list[list[float]]:
    """Scores shaped like `responses` (one list per item); images are PIL images or file paths."""
    name = model_name(cfg)
    # identical answers to the same item get one score (yes/no answers repeat a lot): index -> unique slot
    flat_img, flat_q, flat_r, slot_of = [], [], [], []
    for img, q, rs in zip(images, questions, responses):
        seen: dict[str, int] = {}
        for r in rs:
            if r["text"] not in seen:
                seen[r["text"]] = len(flat_r)
                flat_img.append(img)
                flat_q.append(q)
                flat_r.append(r["text"])
            slot_of.append(seen[r["text"]])
    n_chunks = max(1, min(cfg.workers, len(flat_r)))
    bounds = [len(flat_r) * k // n_chunks for k in range(n_chunks + 1)]
    chunks = [(name, flat_img[a:b], flat_q[a:b], flat_r[a:b], cfg.batch_size, cfg.trust_remote_code)
              for a, b in zip(bounds, bounds[1:])]
    if n_chunks > 1:
        from harness.procs import worker_pool
        with worker_pool(n_chunks) as ex:                          # workers die with this process
            parts = list(ex.map(_score_chunk, chunks))
    else:
        parts = [_score_chunk(chunks[0])] if chunks else []
    scores = [s for part in parts for s in part]
    bad = [i for i, s in enumerate(scores) if s is None or not math.isfinite(float(s))]
    if bad:
        i = bad[0]
        raise HarnessError(f"reward model {name!r} returned a non-finite score ({scores[i]}) for {len(bad)} of "
                           f"{len(scores)} responses, e.g. response {flat_r[i]!r} to {flat_q[i]!r}; "
                           "refusing to select pairs from it")
    out, k = [], 0
    for rs in responses:
        out.append([float(scores[slot_of[k + j]]) for j in range(len(rs))])
        k += len(rs)
    return out
