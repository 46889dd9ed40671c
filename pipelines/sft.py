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

from harness.errors import HarnessError
from pipelines.preference import dpo_method


def check(cfg, run) -> None:
    if list(cfg.train.loss_type) != ["sft"]:
        raise HarnessError(f"method sft trains with train.loss_type=[sft] only, got {cfg.train.loss_type} "
                           "(a DPO term makes it rm-dpo)")


METHOD = dpo_method(
    "sft", check=check,
    description="baseline: supervised fine-tuning (LoRA) on rm-dpo's chosen answers only (DPOTrainer, loss [sft])")
