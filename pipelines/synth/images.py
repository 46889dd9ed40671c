"""Stage 2 — N candidate images per prompt.

Paper: Stable Diffusion 3 Medium through diffusers' `StableDiffusion3Pipeline`, 4 images per prompt at
guidance 5, 7, 9, 11, 28 steps, seed = prompt_index * 1000 + image_number. micro: the world's generator
(harness.world.generator), whose defect rates depend on the same guidance knob, with the same seed rule.
Both return, per prompt, a list of candidates {"number", "guidance", "seed", "image": PIL, ...}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from harness.errors import HarnessError


@dataclass
class ImagesConfig:
    backend: str = "micro"                 # "micro" | "sd3"
    model: str = ""                        # sd3: a diffusers directory (e.g. stabilityai/stable-diffusion-3-medium-diffusers)
    n: int = 4                             # candidates per prompt
    guidances: list[float] = field(default_factory=lambda: [5.0, 7.0, 9.0, 11.0])
    steps: int = 28
    height: int = 1024
    width: int = 1024
    dtype: str = "float32"                 # "auto": bfloat16 on a GPU, float32 on the CPU
    device: str = "cpu"                    # "auto": cuda when a GPU is visible, else cpu


def image_seed(prompt_index: int, image_number: int) -> int:
    return prompt_index * 1000 + image_number


class MicroGenerator:
    """The micro world's generator: candidate i uses guidance guidances[i % len]."""

    def __init__(self, cfg: ImagesConfig):
        self.cfg = cfg

    def candidates(self, prompt_row: dict) -> list[dict]:
        from harness.world.generator import generate_candidates
        from harness.world.scene import Scene
        scene = Scene.from_dict(prompt_row["scene"])
        cands = generate_candidates(scene, self.cfg.n, seed=image_seed(prompt_row["id"], 0),
                                    guidances=tuple(self.cfg.guidances))
        return [{"number": i, "guidance": c.guidance, "seed": image_seed(prompt_row["id"], i), "image": c.image,
                 "scene": c.scene.to_dict(), "defects": list(c.defects)} for i, c in enumerate(cands)]


class SD3Generator:
    """diffusers StableDiffusion3Pipeline, one call per (prompt, guidance) with its own seeded generator."""

    def __init__(self, cfg: ImagesConfig):
        import torch
        try:
            from diffusers import StableDiffusion3Pipeline
        except ImportError:
            raise HarnessError("images.backend=sd3 needs diffusers: pip install 'harness[real]'") from None
        if not cfg.model:
            raise HarnessError("images.backend=sd3 needs images.model (a diffusers SD3 directory)")
        self.cfg = cfg
        self.torch = torch
        from harness.models.hub import auto_device, auto_dtype
        from pipelines.synth.models import resolve
        try:
            path = resolve(cfg.model)              # zoo name, local directory or hub id (HF cache)
        except HarnessError as e:
            raise HarnessError(f"images.model {cfg.model!r} is not a local diffusers directory or a hub id "
                               f"in the HF cache: {e}") from None
        index = path / "model_index.json"
        if not index.is_file():
            raise HarnessError(f"images.model {cfg.model!r} is not a diffusers pipeline (no model_index.json in {path})")
        device = auto_device(None if cfg.device == "auto" else cfg.device)
        # components saved as [null, null] (e.g. SD3 without its T5 encoder) must be passed as None explicitly
        absent = {k: None for k, v in json.loads(index.read_text()).items()
                  if isinstance(v, list) and v == [None, None]}
        self.pipe = StableDiffusion3Pipeline.from_pretrained(path, torch_dtype=auto_dtype(device, cfg.dtype),
                                                             use_safetensors=True, **absent).to(device)
        self.pipe.set_progress_bar_config(disable=True)

    def candidates(self, prompt_row: dict) -> list[dict]:
        out = []
        for i in range(self.cfg.n):
            g = self.cfg.guidances[i % len(self.cfg.guidances)]
            seed = image_seed(prompt_row["id"], i)
            gen = self.torch.Generator(device="cpu").manual_seed(seed)
            img = self.pipe(prompt_row["prompt"], guidance_scale=float(g), num_inference_steps=self.cfg.steps,
                            height=self.cfg.height, width=self.cfg.width, generator=gen).images[0]
            out.append({"number": i, "guidance": g, "seed": seed, "image": img})
        return out


BACKENDS = {"micro": MicroGenerator, "sd3": SD3Generator}


def make_generator(cfg: ImagesConfig):
    if cfg.backend not in BACKENDS:
        raise HarnessError(f"unknown images.backend {cfg.backend!r} (known: {', '.join(BACKENDS)})")
    if cfg.n < 1 or not cfg.guidances:
        raise HarnessError("images.n must be >= 1 and images.guidances non-empty")
    return BACKENDS[cfg.backend](cfg)
