"""`harness run ... --dry-run`: resolve everything a run needs, say what it will do, and stop before any model work.

Resolves every model the config names (zoo name, local directory or hub id; harness.models.hub: a connected
machine downloads what is missing, an offline one must have it cached), checks the real suites' prepared data
(harness.data) and asks the judge one test question when a judged suite uses the OpenAI-compatible judge. Then it
prints the work: prompts, images, generations, reward-model scores, pairs, training steps, evaluation
generations and judge calls, with a rough GPU-hours estimate per stage. No model is loaded and nothing is
written to the run directory. `preflight(settings)` is the part `harness run --world real` does before synthesis
(data and judge), so a missing data root or a dead judge fails in seconds, not after a night of synthesis.
"""

from __future__ import annotations

import json
import math
import os
import sys

from harness.errors import HarnessError

# Rough seconds per unit on one A100/H100-class GPU in bf16. ESTIMATES, not measurements: SD3-Medium at
# 1024x1024 and 28 steps ~2.5 s/image (diffusers, batch 1); a 7B responder writing a ~300-token description in
# batches of 8 ~1.0 s/response (13B: 2.0 s); ArmoRM-8B scoring one conversation at a time ~0.08 s; CLIP-L
# scoring ~0.01 s/image; one DPO+LoRA optimizer step of LLaVA-1.5-7B (batch 1 x grad_accum 2, gradient
# checkpointing) ~1.5 s; evaluation ~0.15 s per short (yes/no) answer and ~1.5 s per long answer in batches of 8.
SECONDS = {"image": 2.5, "image_score": 0.01, "response_7b": 1.0, "response_13b": 2.0, "rm_score": 0.08,
           "train_step": 1.5, "eval_short": 0.15, "eval_long": 1.5}
SHORT_ANSWER_DOCS = ("random.jsonl", "popular.jsonl", "adversarial.jsonl", "amber_d.jsonl")   # yes/no items


def models_of(settings, cfg) -> dict[str, tuple[str, bool]]:
    """{role: (model name, needs remote code)} of everything the run loads."""
    out = {"base": (settings.base_model, False)}
    synth = getattr(cfg, "synth", None)
    if synth is None:
        return out
    if getattr(synth.images, "backend", "") != "micro":
        out["images"] = (synth.images.model, False)
    out["image_reward"] = (synth.image_reward.model, False)
    for i, name in enumerate(synth.responders.models):
        if name != "policy":
            out[f"responder {i + 1}"] = (name, False)
    from pipelines.synth.response_reward import model_name
    rr = synth.response_reward
    out["response_reward"] = (model_name(rr), bool(getattr(rr, "trust_remote_code", False)))
    return out


def resolve_models(models: dict[str, tuple[str, bool]]) -> dict[str, dict]:
    """Each model's directory and class (from its config; nothing is loaded)."""
    from harness.models.hub import resolve
    out = {}
    for role, (name, remote) in models.items():
        path = resolve(name, remote_code=remote)
        cfg_file = path / "config.json" if (path / "config.json").is_file() else path / "model_index.json"
        try:
            cfg = json.loads(cfg_file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HarnessError(f"{role} model {name!r}: unreadable {cfg_file}: {e}") from None
        kind = (cfg.get("architectures") or [cfg.get("_class_name", "?")])[0]
        out[role] = {"name": name, "path": str(path), "class": kind, "remote_code": remote}
    return out


def judge_check(settings, suites) -> dict | None:
    """The judge's identity after one test call (HarnessError if it does not answer), or None if unused."""
    if not any(s.judged for s in suites) or settings.judge != "openai":
        return None
    from harness.judges import load_judge
    judge = load_judge("openai")
    who = judge.describe()
    print(f"judge: {who['model']} at {who['base_url']} (key: ${judge.api_key_env} "
          f"{'set' if os.environ.get(judge.api_key_env) else 'not set'})", file=sys.stderr)
    reply, error = judge.complete("Reply with the single word OK.")
    if reply is None:
        raise HarnessError(f"the judge does not answer: {error} (set HARNESS_JUDGE_URL / HARNESS_JUDGE_MODEL, "
                           "and the key in OPENAI_API_KEY, for an OpenAI-compatible endpoint)")
    return who


def preflight(settings, cfg=None) -> dict:
    """What `harness run` checks before synthesis in the real world: every model resolves (downloaded when
    connected, cached when offline), the data is prepared, the judge answers. Bad input: HarnessError (exit 2)."""
    from harness import data, registry
    models = resolve_models(models_of(settings, cfg)) if cfg is not None else {}
    if "response_reward" in models:               # a head the checkpoint lacks: refused before any work
        from harness.models.reward import check_heads
        rr = models["response_reward"]
        check_heads(rr["name"], trust_remote_code=rr["remote_code"])
    suites = [registry.load("suites", s) for s in settings.suites]
    manifests = data.check([s.name for s in suites])
    return {"models": models, "data": manifests, "judge": judge_check(settings, suites)}


def plan(settings, cfg, manifests: dict) -> list[tuple[str, str, float]]:
    """[(stage, what, estimated GPU-hours)] for one run (one round; a second round repeats synth + train)."""
    rows = []
    synth = getattr(cfg, "synth", None)
    rounds = int(getattr(cfg, "rounds", 1) or 1)
    if synth is not None:
        from pipelines.synth.prompts import n_prompts
        n = n_prompts(synth.prompts, settings.size)
        llm = []
        if synth.prompts.source == "llm":      # batches per category, one more where a count does not divide
            cats = len(synth.prompts.categories) or 15
            llm.append(f"about {n // synth.prompts.per_request + cats} prompt requests")
        if synth.questions.backend == "llm":
            llm.append(f"{n} question requests")
        if llm:
            rows.append(("llm", " + ".join(llm) + f" to {synth.prompts.llm_model or synth.questions.llm_model} "
                                                 "(not on this GPU)", 0.0))
        images = n * synth.images.n
        rows.append(("images", f"{n} prompts x {synth.images.n} = {images} images, {images} image-reward scores",
                     images * (SECONDS["image"] + SECONDS["image_score"]) / 3600 * rounds))
        per = synth.responders.samples_per_model
        secs = sum(per * n * (SECONDS["response_13b"] if "13b" in m.lower() else SECONDS["response_7b"])
                   for m in synth.responders.models)
        gens = n * per * len(synth.responders.models)
        rows.append(("responses", f"{n} questions x {len(synth.responders.models)} models x {per} = {gens} "
                                  f"generations (up to {synth.responders.max_new_tokens} tokens)", secs / 3600 * rounds))
        rows.append(("rewards", f"{gens} response-reward scores", gens * SECONDS["rm_score"] / 3600 * rounds))
    train = getattr(cfg, "train", None)
    if train is not None:
        per_step = max(1, train.batch_size * train.grad_accum)
        steps = train.max_steps if train.max_steps and train.max_steps > 0 else \
            math.ceil(settings.size / per_step) * max(1, math.ceil(train.epochs))
        rows.append(("train", f"{settings.size} pairs -> about {steps} optimizer steps "
                              f"(batch {train.batch_size} x accumulation {train.grad_accum}, {train.epochs} epochs)",
                     steps * SECONDS["train_step"] / 3600 * rounds))
    items, short, judged = 0, 0, 0
    from harness import registry
    for name in settings.suites:
        counts = (manifests.get(name) or {}).get("counts") or {}
        n_items = sum(counts.values())
        items += n_items
        short += sum(c for docs, c in counts.items() if docs in SHORT_ANSWER_DOCS)
        judged += n_items if registry.load("suites", name).judged else 0
    rows.append(("evaluate", f"2 checkpoints x {items} items = {2 * items} generations; {2 * judged} judge calls",
                 2 * (short * SECONDS["eval_short"] + (items - short) * SECONDS["eval_long"]) / 3600))
    return rows


def dry_run(method: str, size: str, world: str, out=None, preset=None, overrides=None, suites=None) -> dict:
    from harness.api import prepare
    m, settings, cfg, run_dir, config, chash = prepare(method, size, world, out, preset, overrides, suites)
    checks = preflight(settings, cfg) if world == "real" else \
        {"models": resolve_models(models_of(settings, cfg)), "data": {}, "judge": None}
    models = checks["models"]
    for role, info in models.items():
        remote = " (runs its own model code: trust_remote_code)" if info["remote_code"] else ""
        print(f"{role:16s} {info['name']} -> {info['class']}{remote}\n{'':16s} {info['path']}", file=sys.stderr)
    rows = plan(settings, cfg, checks["data"])
    print(f"\n{method} {size} ({world}) -> {run_dir}; suites: {', '.join(settings.suites)}", file=sys.stderr)
    for stage, what, hours in rows:
        print(f"  {stage:10s} {what}  ~{hours:.1f} GPU-h", file=sys.stderr)
    total = sum(h for _, _, h in rows)
    print(f"  total      ~{total:.1f} GPU-hours (rough: per-item seconds in harness/dryrun.py, one A100/H100-class "
          "GPU, bf16)\ndry run: nothing loaded, nothing written", file=sys.stderr)
    return {"models": models, "judge": checks["judge"], "plan": rows, "gpu_hours": total}


def dry_run_cli(args) -> int:
    from harness.api import _sizes
    for s in _sizes(args.size):
        dry_run(args.method, s, args.world, args.out, args.preset, args.overrides, getattr(args, "suites", None))
    return 0
