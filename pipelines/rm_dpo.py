"""rm-dpo — the paper's method (PDS-DPO / Synth-Align, arXiv 2412.17417).

Synthesize preference pairs (prompts -> images -> best image by image reward -> a question -> responses from
several models -> response reward -> chosen = max, rejected = min), then train DPO + LoRA on them.
Optionally (`rounds: 2`, the micro preset) a second, on-policy round: merge the round-1 adapter, re-sample
responses from the merged policy on new images, re-score, and train again on top; the rounds' adapters are
concatenated into one adapter for the original base model.

Run it: `harness run --method rm-dpo --size 5k` (micro) or `--world real` (presets/rm-dpo/real-5k.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.method import Method
from harness.stages import Stages
from pipelines.dpo import DPOTrainConfig, combine_adapters, merge_adapter, train_dpo
from pipelines.synth import SynthConfig, synthesize


@dataclass
class RmDpoConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    train: DPOTrainConfig = field(default_factory=DPOTrainConfig)
    rounds: int = 1                  # 2 = one extra on-policy round
    round_size: float = 1.0          # pairs per extra round, as a fraction of the run's size


def check(cfg: RmDpoConfig, run) -> None:
    from harness.errors import HarnessError
    from pipelines.synth.prompts import check_capacity
    check_capacity(cfg.synth.prompts, run.size)
    if cfg.rounds < 1:
        raise HarnessError(f"rounds must be >= 1, got {cfg.rounds}")
    if cfg.rounds > 1:
        check_capacity(cfg.synth.prompts, max(1, int(round(run.size * cfg.round_size))))


def build_pairs(cfg: RmDpoConfig, run, out_dir: Path, stages: Stages) -> dict:
    return synthesize(cfg.synth, n_pairs=run.size, seed=run.seed, world=run.world, policy=run.base_model,
                      stages=stages, out_dir=out_dir, title=f"rm-dpo {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: RmDpoConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages, score_fn=None,
          select_fn=None) -> dict:
    """`score_fn` / `select_fn`: a baseline's synthesis hooks, used again in the on-policy rounds."""
    import json

    from harness.errors import HarnessError
    if cfg.rounds < 1:
        raise HarnessError(f"rounds must be >= 1, got {cfg.rounds}")
    timings: dict[str, float] = {}
    policy, adapters, logs = run.base_model, [], []
    for k in range(1, cfg.rounds + 1):
        data = dataset_dir
        if k > 1:
            # on-policy round: merge the previous round into a full checkpoint, re-sample from it on new images
            prev = adapters[-1]
            merged = stages.run(f"merge{k - 1}", {"policy": str(policy), "adapter": str(prev)},
                                lambda d, p=policy, a=prev: (merge_adapter(p, a, d / "model"), {})[1])
            policy = str(merged.path / "model")
            timings[f"merge{k - 1}"] = merged.seconds
            n = max(1, int(round(run.size * cfg.round_size)))
            card = synthesize(cfg.synth, n_pairs=n, seed=run.seed, world=run.world, policy=policy,
                              stages=stages.sub(f"round{k}-synth"), out_dir=None,
                              prompt_offset=k * 104_729, title=f"{run.method} on-policy round {k}",
                              score_fn=score_fn, select_fn=select_fn)
            timings.update({f"round{k}.synth.{s}": v for s, v in card["timings"].items()})
            data = Path(card["dataset_dir"])
        st = stages.run(f"round{k}", {"train": cfg.train.__dict__ | {}, "policy": str(policy), "data": str(data),
                                      "seed": run.seed + k - 1},
                        lambda d, p=policy, ds=data, s=run.seed + k - 1, kk=k:
                        train_dpo(cfg.train, base=p, dataset_dir=ds, out_dir=d, seed=s, label=f"round{kk}"))
        timings[f"round{k}.train"] = st.seconds
        adapters.append(st.path / "adapter")
        logs.append(json.loads((st.path / "train_log.json").read_text()))
    combine_adapters(run.base_model, adapters, out_dir / "adapter")
    from harness.io import write_json
    write_json(out_dir / "train_log.json", {"rounds": logs})
    return {"rounds": [lg["summary"] for lg in logs], "timings": timings}


METHOD = Method(
    name="rm-dpo",
    config_cls=RmDpoConfig,
    build_pairs=build_pairs,
    train=train,
    description="paper's PDS-DPO: image reward -> responses -> response RM (chosen=max, rejected=min) -> DPO+LoRA",
    worlds=("micro", "real"),
    check=check,
    code_modules=("pipelines.rm_dpo", "pipelines.dpo", "pipelines.synth"),
)
