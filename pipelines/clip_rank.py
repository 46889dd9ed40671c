"""clip-rank — CLIP-DPO style: rm-dpo's candidate responses ranked by an image–text scorer instead of a reward model.

Everything is rm-dpo's (prompts, images, questions, responders, selection rules, DPO + SFT loss, LoRA, the
on-policy round) except the response reward: each response is scored by the CLIP similarity between the kept image
and the response text (the same scorer the image reward uses: `micro-clip` in the micro world, an OpenAI CLIP in
the real one; cosine x logit scale). CLIP reads a response as a caption, so it sees which objects and colours are
named, not whether a yes/no or count answer is right, and its text encoder reads at most 77 tokens (micro-clip 64):
longer responses are cut, which is the known weakness of CLIP-ranked preference data on long answers.

Run it: `harness run --method clip-rank --size 5k` (micro) or `--world real` (presets/clip-rank/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.method import Method
from harness.stages import Stages, code_version
from pipelines import rm_dpo
from pipelines.rm_dpo import RmDpoConfig
from pipelines.synth import synthesize
from pipelines.synth.image_reward import ImageRewardConfig


@dataclass
class ClipRankConfig(RmDpoConfig):
    scorer: ImageRewardConfig = field(default_factory=ImageRewardConfig)   # the response scorer (a CLIPModel dir)


def clip_scores(cfg: ImageRewardConfig):
    """score_fn: CLIP(image, response text) for every response; images are PIL images or file paths."""
    from pipelines.synth.models import fingerprint

    def score(images, questions, responses):
        from PIL import Image

        from pipelines.synth.image_reward import ClipScorer
        scorer = ClipScorer(cfg)
        tok, max_tokens = scorer.processor.tokenizer, scorer.model.config.text_config.max_position_embeddings
        flat_img, flat_txt = [], []
        for im, rs in zip(images, responses):
            if isinstance(im, (str, Path)):
                with Image.open(im) as f:
                    im = f.convert("RGB")
            flat_img += [im] * len(rs)
            flat_txt += [_fit(tok, r["text"], max_tokens) for r in rs]
        flat = scorer.score(flat_img, flat_txt) if flat_txt else []
        out, k = [], 0
        for rs in responses:
            out.append(flat[k:k + len(rs)])
            k += len(rs)
        return out
    score.__name__ = f"CLIP score ({cfg.model} {fingerprint(cfg.model)[:12]}, code {code_version(__name__)})"
    return score


def _fit(tokenizer, text: str, max_tokens: int) -> str:
    """Cut a response to what the text encoder reads (max_tokens minus BOS/EOS) instead of failing on it."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens - 2 else tokenizer.decode(ids[:max_tokens - 2])


def build_pairs(cfg: ClipRankConfig, run, out_dir: Path, stages: Stages) -> dict:
    return synthesize(cfg.synth, n_pairs=run.size, seed=run.seed, world=run.world, policy=run.base_model,
                      stages=stages, out_dir=out_dir, score_fn=clip_scores(cfg.scorer),
                      title=f"clip-rank {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: ClipRankConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages, score_fn=clip_scores(cfg.scorer))


METHOD = Method(
    name="clip-rank",
    config_cls=ClipRankConfig,
    build_pairs=build_pairs,
    train=train,
    description="CLIP-DPO style: rm-dpo's responses ranked by CLIP(image, response) instead of a reward model -> DPO+LoRA",
    worlds=("micro", "real"),
    check=rm_dpo.check,
    code_modules=("pipelines.clip_rank", "pipelines.rm_dpo", "pipelines.dpo", "pipelines.synth"),
)
