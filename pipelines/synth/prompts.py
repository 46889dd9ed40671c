"""Stage 1 — text-to-image prompts by category.

micro: one train-split scene per prompt (its theme is the category); the prompt text is the generator's
prompt for that scene. real: a JSONL file of {"category", "prompt"} rows, or `source: llm`: an LLM writes them
by category through the judge's OpenAI-compatible client, as the paper had a GPT-4-family model write them in 15
categories (pipelines/synth/llm.py). Asking for more prompts than the source gives is an error, never a silent
repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

# The micro world can give this many prompts: distinct train scenes are plentiful (millions), but
# sample_scenes deduplicates against all earlier draws, and beyond ~50k prompts a run stops being "minutes
# on 2 cores" (responses alone would take > 20 min), so larger sizes are refused up front.
MICRO_MAX_PROMPTS = 50_000


@dataclass
class PromptsConfig:
    source: str = "micro"          # "micro" | "llm" | path to a JSONL file with {"category", "prompt"} rows
    oversample: float = 1.25       # prompts per requested pair: selection drops ties and malformed answers
    # source "llm" (pipelines/synth/llm.py): the categories (empty = the paper's 15), prompts asked per request,
    # and the LLM (empty = the judge's $HARNESS_JUDGE_MODEL / $HARNESS_JUDGE_URL, filled in here so the run's
    # config, its record and the stage's cache key name them)
    categories: list[str] = field(default_factory=list)
    per_request: int = 25
    llm_model: str = ""
    llm_url: str = ""

    def __post_init__(self):
        if self.source == "llm":
            self.llm_model, self.llm_url = llm_identity(self.llm_model, self.llm_url)


def llm_identity(model: str, url: str) -> tuple[str, str]:
    """The model and endpoint the judge's client would use (harness.judges.openai_judge's defaults)."""
    import os

    from harness.judges.openai_judge import DEFAULT_MODEL, DEFAULT_URL
    return (model or os.environ.get("HARNESS_JUDGE_MODEL") or DEFAULT_MODEL,
            (url or os.environ.get("HARNESS_JUDGE_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_URL).rstrip("/"))


def n_prompts(cfg: PromptsConfig, n_pairs: int) -> int:
    if cfg.oversample < 1.0:
        raise HarnessError(f"prompts.oversample must be >= 1, got {cfg.oversample}")
    return int(round(n_pairs * cfg.oversample))


def check_capacity(cfg: PromptsConfig, n_pairs: int) -> None:
    """Refuse sizes the prompt source cannot give, before any work is done."""
    need = n_prompts(cfg, n_pairs)
    if cfg.source == "llm":
        if cfg.per_request < 1:
            raise HarnessError(f"prompts.per_request must be >= 1, got {cfg.per_request}")
        return                       # the LLM writes as many as needed (or the run stops, saying how many)
    if cfg.source == "micro":
        if need > MICRO_MAX_PROMPTS:
            raise HarnessError(f"size {n_pairs} needs {need} prompts but the micro world gives at most "
                               f"{MICRO_MAX_PROMPTS} (size <= {int(MICRO_MAX_PROMPTS / cfg.oversample)} at "
                               f"prompts.oversample={cfg.oversample})")
        return
    have = len(_read_prompt_file(cfg.source))
    if need > have:
        raise HarnessError(f"size {n_pairs} needs {need} prompts (oversample {cfg.oversample}) but "
                           f"{cfg.source} holds only {have}")


def make_prompts(cfg: PromptsConfig, n: int, seed: int) -> list[dict]:
    """n prompt rows {"id", "category", "prompt", "scene"?}; deterministic in (cfg, n, seed)."""
    if cfg.source == "micro":
        from harness.world.generator import prompt_text
        from harness.world.scene import sample_scenes
        scenes = sample_scenes(n, "train", seed)
        return [{"id": i, "category": s.theme, "prompt": prompt_text(s), "scene": s.to_dict()}
                for i, s in enumerate(scenes)]
    if cfg.source == "llm":
        from pipelines.synth.llm import write_prompts
        rows = write_prompts(n, cfg.categories, cfg.llm_model, cfg.per_request, seed=seed, url=cfg.llm_url)
        return [{"id": i, **r} for i, r in enumerate(rows)]
    rows = _read_prompt_file(cfg.source)
    if n > len(rows):
        raise HarnessError(f"{cfg.source} holds {len(rows)} prompts, {n} needed")
    return [{"id": i, "category": r.get("category", ""), "prompt": r["prompt"]} for i, r in enumerate(rows[:n])]


def _read_prompt_file(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"prompt file not found: {path}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise HarnessError(f"{path}:{line}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    rows = []
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise HarnessError(f"{path}:{ln}: not a JSON object") from None
        if not isinstance(row, dict) or not str(row.get("prompt", "")).strip():
            raise HarnessError(f"{path}:{ln}: each row needs a non-empty \"prompt\"")
        rows.append(row)
    return rows
