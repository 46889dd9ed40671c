"""The default synthesis hooks: the response reward model scores, the selection rules pair.

`reward-model` (scorer) scores each response with the configured response reward model
(synth.response_reward); `rules` (selector) applies pipelines.synth.select (chosen = max, rejected = min, chosen
well-formed, ties dropped, the options of synth.select). A method that names no hook gets these: rm-dpo.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.method import Scorer, Selector
from pipelines.synth.response_reward import ResponseRewardConfig
from pipelines.synth.select import SelectConfig


@dataclass(frozen=True)
class RewardModelScorer(Scorer):
    name = "reward-model"
    response_reward: ResponseRewardConfig

    @classmethod
    def configure(cls, cfg, run) -> RewardModelScorer:
        return cls(cfg.synth.response_reward)

    def identity(self) -> dict:
        from pipelines.synth.models import fingerprint
        return {**super().identity(), "rm": fingerprint(self.describe())}

    def describe(self) -> str:
        from pipelines.synth.response_reward import model_name
        return model_name(self.response_reward)

    def __call__(self, images, questions, responses):
        from pipelines.synth.response_reward import score_responses
        return score_responses(self.response_reward, images, questions, responses)


@dataclass(frozen=True)
class RulesSelector(Selector):
    name = "rules"
    select: SelectConfig
    world: str

    @classmethod
    def configure(cls, cfg, run) -> RulesSelector:
        return cls(cfg.synth.select, run.world)

    def describe(self) -> dict:
        return self.identity()["select"]

    def __call__(self, items, n_pairs):
        from pipelines.synth.select import select_pairs
        return select_pairs(self.select, items, self.world, n_pairs)
