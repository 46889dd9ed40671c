"""random-pairs — the control for "any DPO": the same candidate responses as rm-dpo, paired at random.

Everything is rm-dpo's (prompts, images and their CLIP reward, questions, responders, the selection rules —
chosen must be well-formed, ties and identical texts dropped —, DPO + SFT loss, LoRA, the on-policy round), except
that the response reward model is replaced by a seeded uniform random score: chosen = max and rejected = min of
random numbers is a random pair of distinct responses in random order. What rm-dpo gains over this row is what its
reward model adds; what this row gains over the base is the effect of DPO on the data alone (plus the
well-formed-chosen rule; `synth.select.require_well_formed=false` drops that too, for a fully random order).

Run it: `harness run --method random-pairs --size 5k` (micro) or `--world real` (presets/random-pairs/).
"""

import random
from dataclasses import dataclass

from harness.method import Scorer
from pipelines.preference import dpo_method


@dataclass(frozen=True)
class RandomScorer(Scorer):
    """One uniform [0, 1) number per response, drawn from a generator seeded by the run seed and the item's
    content (the same numbers on a resumed run; different items, e.g. of the on-policy round, differ)."""
    name = "random"
    seed: int

    @classmethod
    def configure(cls, cfg, run) -> "RandomScorer":
        return cls(run.seed)

    def describe(self) -> str:
        return f"random (seed {self.seed})"

    def __call__(self, images, questions, responses):
        out = []
        for i, (q, rs) in enumerate(zip(questions, responses)):
            rng = random.Random(f"random-pairs:{self.seed}:{i}:{q}:" + "\x1f".join(r["text"] for r in rs))
            out.append([rng.random() for _ in rs])
        return out


METHOD = dpo_method(
    "random-pairs", scorer="random",
    description="control: rm-dpo's responses paired at random (random score instead of the reward model) -> DPO+LoRA")
