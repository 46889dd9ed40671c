"""The generic preference trainer: synthesize pairs, train DPO + LoRA, optionally in on-policy rounds.

Every built-in method is this trainer configured by `dpo_method(...)`: it names a scorer (how responses are
scored; default `reward-model`) and a selector (how pairs are made; default `rules`), an optional config
class (a `PreferenceConfig` subclass with the method's own fields) and an optional extra check. The trainer
builds both hooks from the run's config in every round, so round 2 scores and pairs exactly as round 1 did.

Rounds (`rounds: 2`, the micro presets): merge the round-1 adapter into a full checkpoint, re-sample responses
from it on new images, score and pair them with the same hooks, train again on top; the rounds' adapters are
concatenated into one adapter for the original base model (pipelines.dpo.combine_adapters).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.method import Method
from harness.stages import Stages
from pipelines.dpo import DPOTrainConfig
from pipelines.synth import SynthConfig

DEFAULT_SCORER, DEFAULT_SELECTOR = "reward-model", "rules"
ROUND_PROMPT_STRIDE = 104_729        # a prime: round k draws its prompts from seed + k x this, never round 1's


@dataclass
class PreferenceConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    train: DPOTrainConfig = field(default_factory=DPOTrainConfig)
    rounds: int = 1                  # 2 = one extra on-policy round
    round_size: float = 1.0          # pairs per extra round, as a fraction of the run's size


def dpo_method(name: str, *, description: str, scorer: str | type = DEFAULT_SCORER,
               selector: str | type = DEFAULT_SELECTOR,
               config_cls: type = PreferenceConfig, check: Callable | None = None,
               worlds: tuple[str, ...] = ("micro", "real"), presets: Path | None = None) -> Method:
    """A Method that runs this trainer with the named hooks (registry names or Hook subclasses)."""
    return Method(name=name, config_cls=config_cls, build_pairs=build_pairs, train=train, description=description,
                  worlds=worlds, check=functools.partial(check_run, extra=check), scorer=scorer, selector=selector,
                  presets=presets)


def check_run(cfg: PreferenceConfig, run, extra: Callable | None = None) -> None:
    from pipelines.synth.prompts import check_capacity
    check_capacity(cfg.synth.prompts, run.size)
    if cfg.rounds < 1:
        raise HarnessError(f"rounds must be >= 1, got {cfg.rounds}")
    if cfg.rounds > 1:
        if cfg.round_size <= 0:
            raise HarnessError(f"round_size must be > 0 (a fraction of the run's size), got {cfg.round_size}")
        check_capacity(cfg.synth.prompts, _round_pairs(cfg, run))
    from harness.api import check_model
    from pipelines.synth.responders import POLICY
    for name in cfg.synth.responders.models:     # a responder that does not exist: refused before synthesis
        if name != POLICY:                       # "policy": the run's own base / current policy
            check_model(name)
    if extra is not None:
        extra(cfg, run)


def _round_pairs(cfg: PreferenceConfig, run) -> int:
    return max(1, int(round(run.size * cfg.round_size)))


def _synthesize(cfg: PreferenceConfig, run, stages: Stages, *, n_pairs: int, policy: str, out_dir: Path | None,
                title: str, prompt_offset: int = 0) -> dict:
    from harness import registry
    from pipelines.synth import synthesize
    method = registry.load("methods", run.method)
    scorer_cls, selector_cls = method.hook("scorers"), method.hook("selectors")
    return synthesize(cfg.synth, n_pairs=n_pairs, seed=run.seed, world=run.world, policy=policy, stages=stages,
                      out_dir=out_dir, scorer=scorer_cls.configure(cfg, run),
                      selector=selector_cls.configure(cfg, run), prompt_offset=prompt_offset, title=title)


def build_pairs(cfg: PreferenceConfig, run, out_dir: Path, stages: Stages) -> dict:
    return _synthesize(cfg, run, stages, n_pairs=run.size, policy=run.base_model, out_dir=out_dir,
                       title=f"{run.method} {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: PreferenceConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    from harness.io import write_json
    from pipelines.dpo import combine_adapters
    if cfg.rounds < 1:
        raise HarnessError(f"rounds must be >= 1, got {cfg.rounds}")
    timings: dict[str, float] = {}
    policy, adapters, logs = run.base_model, [], []
    for k in range(1, cfg.rounds + 1):
        data = dataset_dir
        if k > 1:
            policy, data = _on_policy_data(cfg, run, stages, k, policy, adapters[-1], timings)
        st = _train_round(cfg, run, stages, k, policy, data)
        timings[f"round{k}.train"] = st.seconds
        adapters.append(st.path / "adapter")
        logs.append(json.loads((st.path / "train_log.json").read_text()))
    combine_adapters(run.base_model, adapters, out_dir / "adapter")
    write_json(out_dir / "train_log.json", {"rounds": logs})
    return {"rounds": [lg["summary"] for lg in logs], "timings": timings}


def _on_policy_data(cfg: PreferenceConfig, run, stages: Stages, k: int, policy: str, prev: Path,
                    timings: dict) -> tuple[str, Path]:
    """Merge the previous round into a full checkpoint and synthesize round k's pairs from it on new images."""
    from pipelines.dpo import merge_adapter
    merged = stages.run(f"merge{k - 1}", {"policy": str(policy), "adapter": str(prev)},
                        lambda d: (merge_adapter(policy, prev, d / "model"), {})[1])
    timings[f"merge{k - 1}"] = merged.seconds
    policy = str(merged.path / "model")
    card = _synthesize(cfg, run, stages.sub(f"round{k}-synth"), n_pairs=_round_pairs(cfg, run), policy=policy,
                       out_dir=None, prompt_offset=k * ROUND_PROMPT_STRIDE, title=f"{run.method} on-policy round {k}")
    timings.update({f"round{k}.synth.{s}": v for s, v in card["timings"].items()})
    return policy, Path(card["dataset_dir"])


def _train_round(cfg: PreferenceConfig, run, stages: Stages, k: int, policy: str, data: Path):
    from pipelines.dpo import train_dpo
    seed = run.seed + k - 1
    return stages.run(f"round{k}", {"train": cfg.train.__dict__ | {}, "policy": str(policy), "data": str(data),
                                    "seed": seed},
                      lambda d: train_dpo(cfg.train, base=policy, dataset_dir=data, out_dir=d, seed=seed,
                                          label=f"round{k}"))
