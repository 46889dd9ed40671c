"""sft — supervised fine-tuning on the chosen answers only, on exactly rm-dpo's data.

Same synthesis as rm-dpo (same reward model, same pairs, same on-policy round), same LoRA, optimiser, schedule,
batches and data order; the only change is the loss: TRL's DPOTrainer with `loss_type: [sft]` (the negative
log-likelihood of the chosen completion, averaged over its tokens; the rejected answer does not enter the loss).
Why DPOTrainer and not SFTTrainer: the same collator and the same chat template / prompt masking / image-token
handling as rm-dpo, so the row differs from rm-dpo (loss [sigmoid, sft]) by the DPO term alone. The price is one
wasted forward pass of the rejected answers and of the reference model per step (negligible in the micro world;
on a GPU for the real world it roughly doubles the step time of a chosen-only SFT).

Run it: `harness run --method sft --size 5k` (micro) or `--world real` (presets/sft/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.method import Method
from harness.stages import Stages
from pipelines import rm_dpo
from pipelines.dpo import DPOTrainConfig
from pipelines.rm_dpo import RmDpoConfig


@dataclass
class SftConfig(RmDpoConfig):
    train: DPOTrainConfig = field(default_factory=lambda: DPOTrainConfig(loss_type=["sft"]))


def check(cfg: SftConfig, run) -> None:
    from harness.errors import HarnessError
    rm_dpo.check(cfg, run)
    if list(cfg.train.loss_type) != ["sft"]:
        raise HarnessError(f"method sft trains with train.loss_type=[sft] only, got {cfg.train.loss_type} "
                           "(a DPO term makes it rm-dpo)")


def build_pairs(cfg: SftConfig, run, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.build_pairs(cfg, run, out_dir, stages)


def train(cfg: SftConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    check(cfg, run)
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages)


METHOD = Method(
    name="sft",
    config_cls=SftConfig,
    build_pairs=build_pairs,
    train=train,
    description="baseline: supervised fine-tuning (LoRA) on rm-dpo's chosen answers only (DPOTrainer, loss [sft])",
    worlds=("micro", "real"),
    check=check,
    code_modules=("pipelines.sft", "pipelines.rm_dpo", "pipelines.dpo", "pipelines.synth"),
)
