"""oracle — pairs picked by the ground-truth judge: the upper bound for any reward model (micro world only).

rm-dpo's candidate responses, scored not by a reward model but by the scene each image actually shows
(pipelines.ground_truth.gt_score: true objects mentioned - 2 x absent objects mentioned for descriptions, right
(+1) / contradicting (-2) for short answers, -3 if malformed), then rm-dpo's selection rules (chosen = max,
rejected = min, chosen well-formed, ties dropped). Everything else is rm-dpo's, on-policy round included. The
reward model still scores the responses (cached, cheap) so the card can report how often it agreed with the
oracle: `selection.rm_agreement` = share of kept pairs whose chosen answer the RM also scored higher.

Run it: `harness run --method oracle --size 5k`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.method import Method
from harness.stages import Stages, code_version
from pipelines import rm_dpo
from pipelines.rm_dpo import RmDpoConfig
from pipelines.synth import synthesize


@dataclass
class OracleConfig(RmDpoConfig):
    pass


def oracle_select(cfg: OracleConfig, world: str):
    """select_fn: re-score every response with the ground truth, then apply rm-dpo's selection rules."""
    from pipelines.ground_truth import gt_score, qa_for
    from pipelines.synth.select import select_pairs

    def select(items, n_pairs):
        from harness.errors import HarnessError
        from harness.world.scene import Scene
        rescored, rm_of = [], {}
        for it in items:
            if not it.get("scene"):
                raise HarnessError("oracle needs the micro world's scene ground truth (synthesis items carry none)")
            scene = Scene.from_dict(it["scene"])
            qa = qa_for(scene, it["question"])
            rm_of[it["id"]] = {r["text"]: s for r, s in zip(it["responses"], it["scores"])}
            rescored.append({**it, "scores": [gt_score(scene, qa, r["text"]) for r in it["responses"]]})
        pairs, selection = select_pairs(cfg.synth.select, rescored, world, n_pairs)
        agree = [rm_of[p["id"]][p["chosen"]] > rm_of[p["id"]][p["rejected"]] for p in pairs]
        selection["rm_agreement"] = round(sum(agree) / len(agree), 4) if agree else None
        return pairs, selection
    select.__name__ = f"ground-truth judge (select {cfg.synth.select}, code {code_version(__name__, 'pipelines.ground_truth')})"
    return select


def build_pairs(cfg: OracleConfig, run, out_dir: Path, stages: Stages) -> dict:
    return synthesize(cfg.synth, n_pairs=run.size, seed=run.seed, world=run.world, policy=run.base_model,
                      stages=stages, out_dir=out_dir, select_fn=oracle_select(cfg, run.world),
                      title=f"oracle {run.world} {run.size} pairs (seed {run.seed})")


def train(cfg: OracleConfig, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict:
    return rm_dpo.train(cfg, run, dataset_dir, out_dir, stages, select_fn=oracle_select(cfg, run.world))


METHOD = Method(
    name="oracle",
    config_cls=OracleConfig,
    build_pairs=build_pairs,
    train=train,
    description="upper bound: rm-dpo's responses, pairs picked by the scene ground truth instead of a reward model",
    worlds=("micro",),
    check=rm_dpo.check,
    code_modules=("pipelines.oracle", "pipelines.ground_truth", "pipelines.rm_dpo", "pipelines.dpo",
                  "pipelines.synth"),
)
