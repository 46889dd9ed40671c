"""concise-dpo — rm-dpo's candidate responses, the shorter well-formed answer preferred (a worked example).

A new method is this file and a preset (presets/concise-dpo/_micro.yaml): the generic DPO trainer
(pipelines.preference) configured with one registered hook, the `concise` scorer. The harness builds the scorer
from the run's config in every round and keys the rewards stage on its name, config and code.
"""

from dataclasses import dataclass

from harness.method import Scorer
from pipelines.preference import dpo_method


@dataclass(frozen=True)
class ConciseScorer(Scorer):
    """Minus the number of words: the shortest answer is chosen, the longest rejected."""
    name = "concise"

    def __call__(self, images, questions, responses):
        return [[-float(len(r["text"].split())) for r in rs] for rs in responses]


METHOD = dpo_method("concise-dpo", scorer="concise", worlds=("micro",),
                    description="example: rm-dpo's responses, the shorter answer preferred -> DPO+LoRA")
