"""DPO training with TRL's DPOTrainer + a PEFT LoRA adapter, shared by every DPO-style method.

Real preset = the paper's recipe (LoRA r128/α256, dropout 0.05 on all LM linear layers, lr 1e-5, cosine,
warmup 3 %, 2 epochs, β 0.1, bf16). Micro preset = a recipe that fits 2 CPU cores (docs/recipe.md): lr 1e-3, β 0.1,
LoRA r16/α32, loss ["sigmoid", "sft"] with weights [0.5, 2.0] (DPO 0.5, SFT on the chosen answer 2: the SFT
term is what keeps outputs well-formed), batch 16, no gradient checkpointing, max_length None (truncation would
cut image tokens).

Also here: merging an adapter into a full checkpoint (the start of an on-policy round) and concatenating the
adapters of several rounds into one adapter for the original base (PEFT `add_weighted_adapter(..., "cat")`:
[A1; A2] and [B1, B2] give B·A = B1·A1 + B2·A2 exactly, with each round's scaling folded in).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, RunFailed
from harness.io import write_json

# All linear layers of the language model (Llama-style names), none of the vision tower or projector.
LM_LINEAR = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class DPOTrainConfig:
    lr: float = 1e-5
    beta: float = 0.1
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    target_modules: str = LM_LINEAR                  # a PEFT regex or comma-separated module names
    loss_type: list[str] = field(default_factory=lambda: ["sigmoid"])
    loss_weights: list[float] | None = None
    batch_size: int = 2                              # per device
    grad_accum: int = 1
    epochs: float = 2.0
    max_steps: int = -1                              # > 0 overrides epochs
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    bf16: bool = False
    gradient_checkpointing: bool = False
    max_length: int | None = None
    report_to: list[str] = field(default_factory=list)   # experiment trackers: tensorboard | wandb | trackio (off)
    threads: int = 1                                 # torch threads (docs/micro-world.md: 1 per process is steadier)

    def __post_init__(self):                         # refused when the config is resolved (exit 2)
        if self.lr <= 0:
            raise ValueError(f"train.lr must be positive, got {self.lr}")
        for name in ("batch_size", "grad_accum", "lora_r", "lora_alpha"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for wrong, rule in ((self.beta <= 0, f"train.beta must be > 0, got {self.beta}"),
                            (not 0 <= self.warmup_ratio < 1, f"train.warmup_ratio must be in [0, 1), got "
                                                             f"{self.warmup_ratio}"),
                            (self.max_steps <= 0 and self.epochs <= 0,
                             f"train.epochs must be > 0 unless train.max_steps > 0, got {self.epochs}")):
            if wrong:
                raise ValueError(rule)
        if not self.loss_type:
            raise ValueError("train.loss_type must name at least one loss (e.g. [sigmoid])")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError(f"train.loss_weights has {len(self.loss_weights)} entries for {len(self.loss_type)} "
                             f"loss types")
        _check_names(self.scheduler, self.loss_type)
        from harness.train_progress import check_report_to
        check_report_to(self.report_to)


def _check_names(scheduler: str, loss_types: list[str]) -> None:
    """Scheduler and loss names as transformers / TRL know them, refused at resolve time (exit 2) instead of
    failing inside the trainer after synthesis. TRL declares its loss names only in DPOConfig's field help."""
    import dataclasses
    import re

    from transformers.trainer_utils import SchedulerType
    from trl import DPOConfig
    schedulers = [s.value for s in SchedulerType]
    if scheduler not in schedulers:
        raise ValueError(f"train.scheduler {scheduler!r} is not a transformers scheduler ({', '.join(schedulers)})")
    help_text = next(f.metadata.get("help", "") for f in dataclasses.fields(DPOConfig) if f.name == "loss_type")
    losses = re.findall(r"`'(\w+)'`", help_text)
    unknown = [t for t in loss_types if losses and t not in losses]
    if unknown:
        raise ValueError(f"train.loss_type {unknown} unknown to TRL's DPO (known: {', '.join(losses)})")


def _target_modules(spec: str):
    return spec if any(ch in spec for ch in "*().|\\") else [m.strip() for m in spec.split(",") if m.strip()]


def train_dpo(cfg: DPOTrainConfig, *, base: str, dataset_dir: str | Path, out_dir: str | Path, seed: int,
              label: str = "dpo") -> dict:
    """Train one LoRA adapter on a saved TRL preference dataset; writes out_dir/adapter, out_dir/train_log.json."""
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    from pipelines.synth.models import resolve

    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    path = resolve(base) if not Path(base).is_dir() else Path(base)
    ds = load_from_disk(str(dataset_dir))
    if len(ds) == 0:
        raise HarnessError(f"preference dataset {dataset_dir} is empty")
    ds = ds.remove_columns([c for c in ds.column_names if c not in ("images", "prompt", "chosen", "rejected")])
    from harness import train_progress
    with train_progress.quiet_loading():           # no "Loading weights" bars
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(
            path, use_safetensors=True, dtype=torch.bfloat16 if cfg.bf16 else torch.float32)
    if cfg.loss_weights is not None and len(cfg.loss_weights) != len(cfg.loss_type):
        raise HarnessError(f"train.loss_weights has {len(cfg.loss_weights)} entries for "
                           f"{len(cfg.loss_type)} loss types")
    # torchrun / accelerate launch: DDP over the ranks with the one-process recipe's batch per step (docs/scaling.md)
    from harness import parallel
    per_device, accum = parallel.split_batch(cfg.batch_size, cfg.grad_accum)
    ddp_backend = "gloo" if parallel.world_size() > 1 and not torch.cuda.is_available() else None
    args = DPOConfig(
        output_dir=str(out_dir / "trainer"), learning_rate=cfg.lr, beta=cfg.beta,
        loss_type=list(cfg.loss_type), loss_weights=cfg.loss_weights,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=accum, ddp_backend=ddp_backend,
        num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, warmup_steps=float(cfg.warmup_ratio),  # a float < 1 is a ratio in transformers 5
        lr_scheduler_type=cfg.scheduler, bf16=cfg.bf16, activation_checkpointing=cfg.gradient_checkpointing,
        max_length=cfg.max_length, logging_steps=1, save_strategy="no", seed=seed,
        report_to=train_progress.check_report_to(cfg.report_to, out_dir),
        data_seed=seed, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
        disable_tqdm=True, remove_unused_columns=False)       # the progress is train_progress's rich bar
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=_target_modules(cfg.target_modules), task_type="CAUSAL_LM", bias="none")
    with train_progress.quiet_loading():           # no tokenizing bars
        trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=processor, peft_config=lora)
    train_progress.attach(trainer, out_dir / "train.log", label)     # every logged step in train.log, not printed
    result = trainer.train()
    trainer.model.save_pretrained(str(out_dir / "adapter"), safe_serialization=True)
    log = [_clean(e) for e in trainer.state.log_history]
    steps = [e for e in log if "loss" in e]
    # a loss logged before the update can still be finite when the gradient is not (train.lr=1e3: grad norm nan
    # at step 3, loss 11.9): the step's update then makes the weights NaN, so both are checked
    bad = [e for e in steps if not all(math.isfinite(e.get(k, 0.0)) for k in ("loss", "grad_norm"))]
    if bad:
        raise RunFailed(f"DPO training diverged at step {bad[0].get('step')} (loss {bad[0]['loss']:.4g}, grad norm "
                        f"{bad[0].get('grad_norm', float('nan')):.4g}): lower train.lr", stage="train")
    summary = {"label": label, "pairs": len(ds), "steps": int(result.global_step),
               "train_seconds": round(float(result.metrics.get("train_runtime", 0.0)), 2),
               "final_loss": steps[-1]["loss"] if steps else None,
               "final_reward_margin": steps[-1].get("rewards/margins") if steps else None,
               "final_reward_accuracy": steps[-1].get("rewards/accuracies") if steps else None,
               "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}
    write_json(out_dir / "train_log.json", {"summary": summary, "steps": log})
    import shutil
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    return summary


def _clean(entry: dict) -> dict:
    return {k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v) for k, v in entry.items()}


def merge_adapter(base: str, adapter: str | Path, out: str | Path) -> Path:
    """base + adapter -> a full HF checkpoint (safetensors) with the base's processor."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from pipelines.synth.models import resolve
    path = resolve(base) if not Path(base).is_dir() else Path(base)
    model = AutoModelForImageTextToText.from_pretrained(path, use_safetensors=True, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    AutoProcessor.from_pretrained(path).save_pretrained(str(out))
    return Path(out)


def combine_adapters(base: str, adapters: list[str | Path], out: str | Path) -> Path:
    """Adapters trained in sequence (round k on base + rounds < k merged) -> one adapter for `base`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from pipelines.synth.models import resolve
    out = Path(out)
    if len(adapters) == 1:
        import shutil
        shutil.copytree(adapters[0], out)
        return out
    path = resolve(base) if not Path(base).is_dir() else Path(base)
    model = AutoModelForImageTextToText.from_pretrained(path, use_safetensors=True, dtype=torch.float32)
    names = [f"round{i + 1}" for i in range(len(adapters))]
    peft_model = PeftModel.from_pretrained(model, str(adapters[0]), adapter_name=names[0])
    for name, a in zip(names[1:], adapters[1:]):
        peft_model.load_adapter(str(a), adapter_name=name)
    peft_model.add_weighted_adapter(names, [1.0] * len(names), "combined", combination_type="cat")
    peft_model.set_adapter("combined")          # first, so deleting the rounds never deletes the active adapter
    for n in names:
        peft_model.delete_adapter(n)
    tmp = out.parent / (out.name + ".tmp")
    peft_model.save_pretrained(str(tmp), safe_serialization=True, selected_adapters=["combined"])
    # PEFT writes non-default adapters into a sub-folder named after the adapter
    src = tmp / "combined" if (tmp / "combined").is_dir() else tmp
    os.replace(src, out)
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    cfg_file = out / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["base_model_name_or_path"] = str(base)
    write_json(cfg_file, cfg)
    return out
