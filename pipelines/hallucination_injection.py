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

import random
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.method import Scorer, Selector
from pipelines.preference import PreferenceConfig, dpo_method


@dataclass
class HallucinationInjectionConfig(PreferenceConfig):
    object_share: float = 0.5       # share of description pairs whose rejected answer gains an absent object


def check(cfg: HallucinationInjectionConfig, run) -> None:
    if not 0.0 <= cfg.object_share <= 1.0:
        raise HarnessError(f"object_share must be in [0, 1], got {cfg.object_share}")
    if cfg.synth.responders.models:
        raise HarnessError("hallucination-injection samples no responses: set synth.responders.models=[] "
                           "(its presets do)")


@dataclass(frozen=True)
class NoScorer(Scorer):
    """Nothing to score (there are no responses)."""
    name = "none"

    def describe(self) -> str:
        return "none (ground-truth answers)"

    def __call__(self, images, questions, responses):
        return [[] for _ in responses]


@dataclass(frozen=True)
class InjectionSelector(Selector):
    """chosen = the ground-truth answer, rejected = it with one injected hallucination."""
    name = "injection"
    object_share: float
    seed: int

    @classmethod
    def configure(cls, cfg: HallucinationInjectionConfig, run) -> "InjectionSelector":
        return cls(cfg.object_share, run.seed)

    def describe(self) -> str:
        return f"ground truth vs injected hallucination (object_share {self.object_share}, seed {self.seed})"

    def __call__(self, items, n_pairs):
        from harness.world.scene import Scene
        from pipelines.ground_truth import qa_for
        pairs, kinds = [], {}
        for it in items[:n_pairs]:
            if not it.get("scene"):
                raise HarnessError("hallucination-injection needs the micro world's scene ground truth")
            scene = Scene.from_dict(it["scene"])
            pair = self._pair(scene, qa_for(scene, it["question"]), it)
            kinds[pair["injected"]["type"]] = kinds.get(pair["injected"]["type"], 0) + 1
            pairs.append(pair)
        if len(pairs) < n_pairs:
            raise HarnessError(f"only {len(items)} images for {n_pairs} pairs")
        return pairs, {"reasons": {"kept": len(pairs)}, "injected": dict(sorted(kinds.items()))}

    def _pair(self, scene, qa, item: dict) -> dict:
        from pipelines.ground_truth import gt_score, inject
        rejected, what = inject(scene, qa, random.Random(f"inject:{self.seed}:{item['id']}:{qa.question}"),
                                self.object_share)
        return {k: v for k, v in item.items() if k not in ("responses", "scores")} | {
            "chosen": qa.answer, "rejected": rejected, "injected": what,
            "chosen_score": gt_score(scene, qa, qa.answer), "rejected_score": gt_score(scene, qa, rejected),
            "chosen_model": "ground truth", "rejected_model": f"injected {what['type']}"}


METHOD = dpo_method(
    "hallucination-injection", scorer="none", selector="injection", config_cls=HallucinationInjectionConfig,
    check=check, worlds=("micro",),
    description="POVID/HALVA style: chosen = ground-truth answer, rejected = it with an injected absent object "
                "or wrong attribute -> DPO+LoRA")
