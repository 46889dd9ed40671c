"""Stage 3 — image reward: score each candidate against its prompt and keep the best (no threshold).

Paper: ImageReward v1.0, argmax of the 4. Here: a CLIP image-text score (cosine similarity x logit scale)
from any `CLIPModel` directory — the zoo's `micro-clip` in the micro world, an OpenAI CLIP in the real world
(ImageReward's own package downloads from the hub at import and does not install from the locked
environment, so it is not wired in: the real presets say CLIP is the stand-in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import HarnessError


@dataclass
class ImageRewardConfig:
    model: str = "micro-clip"
    batch_size: int = 256


class ClipScorer:
    def __init__(self, cfg: ImageRewardConfig):
        import torch
        from transformers import AutoProcessor, CLIPModel

        from harness.models.hub import auto_device, check_loading_info
        from pipelines.synth.models import resolve
        path = resolve(cfg.model)
        self.torch = torch
        self.cfg = cfg
        self.device = auto_device(None)
        self.model, info = CLIPModel.from_pretrained(path, use_safetensors=True, output_loading_info=True)
        check_loading_info(info, f"image reward model {cfg.model!r}")
        self.model = self.model.to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(path)

    def score(self, images: list, texts: list[str]) -> list[float]:
        """One score per (image, text) pair, batched."""
        out: list[float] = []
        torch = self.torch
        with torch.inference_mode():
            for i in range(0, len(images), self.cfg.batch_size):
                batch = self.processor(text=texts[i:i + self.cfg.batch_size], images=images[i:i + self.cfg.batch_size],
                                       return_tensors="pt", padding=True).to(self.device)
                img = self.model.get_image_features(pixel_values=batch["pixel_values"])
                txt = self.model.get_text_features(input_ids=batch["input_ids"],
                                                   attention_mask=batch.get("attention_mask"))
                img = getattr(img, "pooler_output", img)
                txt = getattr(txt, "pooler_output", txt)
                img = img / img.norm(dim=-1, keepdim=True)
                txt = txt / txt.norm(dim=-1, keepdim=True)
                sims = (img * txt).sum(-1) * self.model.logit_scale.exp()
                out.extend(float(s) for s in sims)
        bad = [i for i, s in enumerate(out) if not math.isfinite(s)]
        if bad:
            raise HarnessError(f"image reward model {self.cfg.model!r} returned a non-finite score "
                               f"for {len(bad)} of {len(out)} images")
        return out


def keep_best(candidates: list[dict], scores: list[float]) -> tuple[dict, int]:
    """argmax of the scores (first wins on ties, like the paper's argmax)."""
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return candidates[best], best
