"""oracle — pairs picked by the ground-truth judge: the upper bound for any reward model (micro world only).

rm-dpo's candidate responses, scored not by a reward model but by the scene each image actually shows
(pipelines.ground_truth.gt_score: true objects mentioned - 2 x absent objects mentioned for descriptions, right
(+1) / contradicting (-2) for short answers, -3 if malformed), then rm-dpo's selection rules (chosen = max,
rejected = min, chosen well-formed, ties dropped). Everything else is rm-dpo's, on-policy round included. The
reward model still scores the responses (cached, cheap) so the card can report how often it agreed with the
oracle: `selection.rm_agreement` = share of kept pairs whose chosen answer the RM also scored higher.

Run it: `harness run --method oracle --size 5k`.
"""

from dataclasses import dataclass

from harness.errors import HarnessError
from pipelines.preference import dpo_method
from pipelines.synth.hooks import RulesSelector


@dataclass(frozen=True)
class GroundTruthSelector(RulesSelector):
    """Re-score every response with the ground truth, then apply rm-dpo's selection rules (synth.select)."""
    name = "ground-truth"

    def describe(self) -> str:
        return f"ground-truth judge (select {self.select})"

    def __call__(self, items, n_pairs):
        from harness.world.scene import Scene
        from pipelines.ground_truth import gt_score, qa_for
        from pipelines.synth.select import select_pairs
        rescored, rm_of = [], {}
        for it in items:
            if not it.get("scene"):
                raise HarnessError("oracle needs the micro world's scene ground truth (synthesis items carry none)")
            scene = Scene.from_dict(it["scene"])
            qa = qa_for(scene, it["question"])
            rm_of[it["id"]] = {r["text"]: s for r, s in zip(it["responses"], it["scores"])}
            rescored.append({**it, "scores": [gt_score(scene, qa, r["text"]) for r in it["responses"]]})
        pairs, selection = select_pairs(self.select, rescored, self.world, n_pairs)
        agree = [rm_of[p["id"]][p["chosen"]] > rm_of[p["id"]][p["rejected"]] for p in pairs]
        selection["rm_agreement"] = round(sum(agree) / len(agree), 4) if agree else None
        return pairs, selection


METHOD = dpo_method(
    "oracle", selector="ground-truth", worlds=("micro",),
    description="upper bound: rm-dpo's responses, pairs picked by the scene ground truth instead of a reward model")
