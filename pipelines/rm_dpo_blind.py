"""rm-dpo-blind — rm-dpo with the image-blind response reward model (the paper's setting, an ArmoRM-like RM that
never sees the image), as its own row on the leaderboard.

`rm-dpo` uses the image-aware `micro-rm` by default; `harness run --method rm-dpo synth.response_reward.reward=
image-blind` gives the same run, but a leaderboard row is labelled by its method, so the two would read the same.
This method is rm-dpo with the other reward model in its preset and a check that it really is image-blind.
Micro only: the real-world rm-dpo preset already uses a text-only RM (ArmoRM).

Run it: `harness run --method rm-dpo-blind --size 5k`.
"""

from harness.errors import HarnessError
from pipelines.preference import dpo_method


def check(cfg, run) -> None:
    rr = cfg.synth.response_reward
    if rr.model or rr.reward != "image-blind":
        raise HarnessError("method rm-dpo-blind scores responses with the image-blind micro-rm-blind only "
                           f"(got reward={rr.reward!r}, model={rr.model!r}); use rm-dpo for other reward models")


METHOD = dpo_method(
    "rm-dpo-blind", check=check, worlds=("micro",),
    description="ablation: rm-dpo with the image-blind response reward model (the paper's text-only RM setting)")
