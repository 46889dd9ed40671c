"""Stage 5 — K responses per (image, question) from responder models.

Paper: 3–4 open MLLMs (llava-v1.6 family), off-policy for the model being trained. Here every responder is an
HF LLaVA-architecture checkpoint loaded through harness.models.vlm (the same loader and batched generation the
evaluation uses): the zoo's `micro-responder-a` / `micro-responder-b` in the micro world, llava-hf models in the
real one. The name `policy` means the model being aligned (the run's base model, or in an on-policy round the
current merged checkpoint), which makes some pairs on-policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

POLICY = "policy"


@dataclass
class RespondersConfig:
    models: list[str] = field(default_factory=lambda: ["micro-responder-a", "micro-responder-b", POLICY])
    samples_per_model: int = 2        # sampled responses per model and image
    temperature: float = 1.0
    max_new_tokens: int = 40          # micro descriptions are <= ~35 tokens; the paper allowed 1000
    batch_size: int = 128


def respond(cfg: RespondersConfig, images: list, questions: list[str], policy: str, seed: int,
            policy_adapter: str | None = None, progress: Callable[[str, int, int], None] | None = None
            ) -> list[list[dict]]:
    """Per item, the list of {"model", "sample", "text"} responses (len = models x samples_per_model)."""
    from harness.models.vlm import generate, load_vlm

    out: list[list[dict]] = [[] for _ in questions]
    for mi, name in enumerate(cfg.models):
        model, processor = (load_vlm(policy, adapter=policy_adapter) if name == POLICY else load_vlm(name))
        for s in range(cfg.samples_per_model):
            # distinct, reproducible sampling streams per (run seed, model, sample)
            stream = seed * 1_000_003 + mi * 10_007 + s * 101
            texts = generate(model, processor, images, questions, max_new_tokens=cfg.max_new_tokens,
                             batch_size=cfg.batch_size, temperature=cfg.temperature, seed=stream,
                             progress=(lambda n, _n=name: progress(_n, n, len(questions))) if progress else None)
            for i, t in enumerate(texts):
                out[i].append({"model": name, "sample": s, "text": t})
        del model
    return out
