"""rm-dpo-blind — rm-dpo with the image-blind response reward model (the paper's setting, an ArmoRM-like RM that
never sees the image), as its own row on the leaderboard.

`rm-dpo` uses the image-aware `micro-rm` by default; `harness run --method rm-dpo synth.response_reward.reward=
image-blind` gives the same run, but a leaderboard row is labelled by its method, so the two would read the same.
This method is rm-dpo with the other default and a check that the reward model really is image-blind.
Micro only: the real-world rm-dpo preset already uses a text-only RM (ArmoRM).

Run it: `harness run --method rm-dpo-blind --size 5k`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.method import Method
from harness.stages import Stages
from pipelines import rm_dpo
from pipelines.rm_dpo import RmDpoConfig
from pipelines.synth import SynthConfig
from pipelines.synth.response_reward import ResponseRewardConfig


@dataclass
class RmDpoBlindConfig(RmDpoConfig):
    synth: SynthConfig = field(default_factory=lambda: SynthConfig(
        response_reward=ResponseRewardConfig(reward="image-blind")))


def check(cfg: RmDpoBlindConfig, run) -> None:
    from harness.errors import HarnessError
    rm_dpo.check(cfg, run)
    rr = cfg.synth.response_reward
    if rr.model or rr.reward != "image-blind":
        raise HarnessError("method rm-dpo-blind scores responses with the image-blind micro-rm-blind only "
                           f"(got reward={rr.reward!r}, model={rr.model!r}); use rm-dpo for other reward models")


def build_pairs(cfg: RmDpoBlindConfig, run, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.build_pairs(cfg, run, out_dir, stages)


def train(cfg: RmDpoBlindConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages)


METHOD = Method(
    name="rm-dpo-blind",
    config_cls=RmDpoBlindConfig,
    build_pairs=build_pairs,
    train=train,
    description="ablation: rm-dpo with the image-blind response reward model (the paper's text-only RM setting)",
    worlds=("micro",),
    check=check,
    code_modules=("pipelines.rm_dpo_blind", "pipelines.rm_dpo", "pipelines.dpo", "pipelines.synth"),
)
