"""Lazy plugin registries: name -> "module:attr", resolved only when used.

Built-ins are one line each below; third parties add entries through the entry-point groups
`harness.methods`, `harness.suites` and `harness.judges` (same "module:attr" form). Listing names never
imports the plugin modules, so `harness ls` stays free of torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from harness.errors import HarnessError

METHODS: dict[str, str] = {
    "rm-dpo": "pipelines.rm_dpo:METHOD",
    "rm-dpo-blind": "pipelines.rm_dpo_blind:METHOD",
    "sft": "pipelines.sft:METHOD",
    "random-pairs": "pipelines.random_pairs:METHOD",
    "clip-rank": "pipelines.clip_rank:METHOD",
    "hallucination-injection": "pipelines.hallucination_injection:METHOD",
    "oracle": "pipelines.oracle:METHOD",
}

SUITES: dict[str, str] = {
    # micro world (filled by benchmarks.suites)
    "micro-pope": "benchmarks.suites:MICRO_POPE",
    "micro-amber": "benchmarks.suites:MICRO_AMBER",
    "micro-mmhal": "benchmarks.suites:MICRO_MMHAL",
    "micro-mmvet": "benchmarks.suites:MICRO_MMVET",
    "micro-chair": "benchmarks.suites:MICRO_CHAIR",
    # real world
    "pope": "benchmarks.suites:POPE",
    "mmvet": "benchmarks.suites:MMVET",
    "amber": "benchmarks.suites:AMBER",
    "mmhal": "benchmarks.suites:MMHAL",
    "object-halbench": "benchmarks.suites:OBJECT_HALBENCH",
}

JUDGES: dict[str, str] = {
    "rule": "harness.judges.rule:RuleJudge",
    "openai": "harness.judges.openai_judge:OpenAIJudge",
}

_GROUPS = {"methods": ("harness.methods", METHODS), "suites": ("harness.suites", SUITES),
           "judges": ("harness.judges", JUDGES)}


def names(kind: str) -> dict[str, str]:
    """All registered names of a kind (built-ins + entry points) -> "module:attr"."""
    group, builtin = _GROUPS[kind]
    table = dict(builtin)
    for ep in entry_points(group=group):
        table.setdefault(ep.name, ep.value)
    return table


def load(kind: str, name: str) -> Any:
    table = names(kind)
    if name not in table:
        known = ", ".join(sorted(table))
        raise HarnessError(f"unknown {kind[:-1]} {name!r} (known: {known})")
    return import_target(table[name])


def import_target(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
