"""rm-dpo — the paper's method (PDS-DPO / Synth-Align, arXiv 2412.17417; docs/recipe.md).

Synthesize preference pairs (prompts -> images -> best image by image reward -> a question -> responses from
several models -> response reward -> chosen = max, rejected = min), then train DPO + LoRA on them, optionally
with a second, on-policy round (`rounds: 2`, the micro preset). It is the generic trainer
(pipelines/preference.py) with its default hooks: the response reward model scores, the selection rules pair.

Run it: `harness run --method rm-dpo --size 5k` (micro) or `--world real` (presets/rm-dpo/real-5k.yaml).
"""

from pipelines.preference import dpo_method

METHOD = dpo_method(
    "rm-dpo",
    description="paper's PDS-DPO: image reward -> responses -> response RM (chosen=max, rejected=min) -> DPO+LoRA")
