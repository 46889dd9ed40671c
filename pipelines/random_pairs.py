"""random-pairs — the control for "any DPO": the same candidate responses as rm-dpo, paired at random.

Everything is rm-dpo's (prompts, images and their CLIP reward, questions, responders, the selection rules —
chosen must be well-formed, ties and identical texts dropped —, DPO + SFT loss, LoRA, the on-policy round), except
that the response reward model is replaced by a seeded uniform random score: chosen = max and rejected = min of
random numbers is a random pair of distinct responses in random order. What rm-dpo gains over this row is what its
reward model adds; what this row gains over the base is the effect of DPO on the data alone (plus the
well-formed-chosen rule; `synth.select.require_well_formed=false` drops that too, for a fully random order).

Run it: `harness run --method random-pairs --size 5k` (micro) or `--world real` (presets/random-pairs/).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from harness.method import Method
from harness.stages import Stages, code_version
from pipelines import rm_dpo
from pipelines.rm_dpo import RmDpoConfig
from pipelines.synth import synthesize


@dataclass
class RandomPairsConfig(RmDpoConfig):
    pass


def random_scores(seed: int):
    """score_fn: one uniform [0, 1) number per response, drawn from a generator seeded by the run seed and the
    item's content (the same numbers on a resumed run; different items, e.g. of the on-policy round, differ)."""
    def score(images, questions, responses):
        out = []
        for i, (q, rs) in enumerate(zip(questions, responses)):
            rng = random.Random(f"random-pairs:{seed}:{i}:{q}:" + "\x1f".join(r["text"] for r in rs))
            out.append([rng.random() for _ in rs])
        return out
    score.__name__ = f"random (seed {seed}, code {code_version(__name__)})"
    return score


def build_pairs(cfg: RandomPairsConfig, run, out_dir: Path, stages: Stages) -> dict:
    return synthesize(cfg.synth, n_pairs=run.size, seed=run.seed, world=run.world, policy=run.base_model,
                      stages=stages, out_dir=out_dir, score_fn=random_scores(run.seed),
                      title=f"random-pairs {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: RandomPairsConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages, score_fn=random_scores(run.seed))


METHOD = Method(
    name="random-pairs",
    config_cls=RandomPairsConfig,
    build_pairs=build_pairs,
    train=train,
    description="control: rm-dpo's responses paired at random (random score instead of the reward model) -> DPO+LoRA",
    worlds=("micro", "real"),
    check=rm_dpo.check,
    code_modules=("pipelines.random_pairs", "pipelines.rm_dpo", "pipelines.dpo", "pipelines.synth"),
)
