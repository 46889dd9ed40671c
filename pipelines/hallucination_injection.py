"""hallucination-injection — POVID / HALVA style: chosen = the correct answer, rejected = the same answer with
one hallucination injected (micro world only: it needs each image's ground truth).

Same prompts, images (CLIP keep-best) and questions as rm-dpo; no responders and no reward model. For each kept
image the chosen answer is the world's ground-truth answer to its question (for "describe this image ." the full
description), and the rejected answer is that answer made wrong in one place (pipelines.ground_truth.inject):
with probability `object_share` a co-occurring object that is absent is added to a description (what a
prior-driven model hallucinates), else one attribute of a true object is made wrong (colour or size); short answers
get the wrong value (colour, size, count, position, digit, spatial yes/no; "yes" to an absent object, "no" to a
present one). Pairs differ in exactly the hallucinated span, and the SFT term trains on ground-truth answers.
Adding an object makes the rejected description longer (the card's length table shows it), as in POVID. Training is rm-dpo's
(DPO + SFT, LoRA); the second round, when `rounds: 2`, is another round of injected pairs on new images (there are
no responses to sample, so it is not on-policy) — kept so the training budget matches rm-dpo's.

Run it: `harness run --method hallucination-injection --size 5k`.
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
class HallucinationInjectionConfig(RmDpoConfig):
    object_share: float = 0.5       # share of description pairs whose rejected answer gains an absent object


def check(cfg: HallucinationInjectionConfig, run) -> None:
    from harness.errors import HarnessError
    rm_dpo.check(cfg, run)
    if not 0.0 <= cfg.object_share <= 1.0:
        raise HarnessError(f"object_share must be in [0, 1], got {cfg.object_share}")
    if cfg.synth.responders.models:
        raise HarnessError("hallucination-injection samples no responses: set synth.responders.models=[] "
                           "(its presets do)")


def no_reward(images, questions, responses):
    """score_fn: nothing to score (there are no responses)."""
    return [[] for _ in responses]


no_reward.__name__ = "none (ground-truth answers)"


def inject_select(cfg: HallucinationInjectionConfig, seed: int):
    """select_fn: chosen = ground-truth answer, rejected = it with one injected hallucination."""
    from pipelines.ground_truth import gt_score, inject, qa_for

    def select(items, n_pairs):
        from harness.errors import HarnessError
        from harness.world.scene import Scene
        pairs, kinds = [], {}
        for it in items[:n_pairs]:
            if not it.get("scene"):
                raise HarnessError("hallucination-injection needs the micro world's scene ground truth")
            scene = Scene.from_dict(it["scene"])
            qa = qa_for(scene, it["question"])
            rejected, what = inject(scene, qa, random.Random(f"inject:{seed}:{it['id']}:{qa.question}"),
                                    cfg.object_share)
            kinds[what["type"]] = kinds.get(what["type"], 0) + 1
            pairs.append({k: v for k, v in it.items() if k not in ("responses", "scores")} | {
                "chosen": qa.answer, "rejected": rejected, "injected": what,
                "chosen_score": gt_score(scene, qa, qa.answer), "rejected_score": gt_score(scene, qa, rejected),
                "chosen_model": "ground truth", "rejected_model": f"injected {what['type']}"})
        if len(pairs) < n_pairs:
            raise HarnessError(f"only {len(items)} images for {n_pairs} pairs")
        return pairs, {"reasons": {"kept": len(pairs)}, "injected": dict(sorted(kinds.items()))}
    select.__name__ = (f"ground truth vs injected hallucination (object_share {cfg.object_share}, seed {seed}, "
                       f"code {code_version(__name__, 'pipelines.ground_truth')})")
    return select


def build_pairs(cfg: HallucinationInjectionConfig, run, out_dir: Path, stages: Stages) -> dict:
    return synthesize(cfg.synth, n_pairs=run.size, seed=run.seed, world=run.world, policy=run.base_model,
                      stages=stages, out_dir=out_dir, score_fn=no_reward, select_fn=inject_select(cfg, run.seed),
                      title=f"hallucination-injection {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: HallucinationInjectionConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages, score_fn=no_reward,
                        select_fn=inject_select(cfg, run.seed))


METHOD = Method(
    name="hallucination-injection",
    config_cls=HallucinationInjectionConfig,
    build_pairs=build_pairs,
    train=train,
    description="POVID/HALVA style: chosen = ground-truth answer, rejected = it with an injected absent object "
                "or wrong attribute -> DPO+LoRA",
    worlds=("micro",),
    check=check,
    code_modules=("pipelines.hallucination_injection", "pipelines.ground_truth", "pipelines.rm_dpo",
                  "pipelines.dpo", "pipelines.synth"),
)
