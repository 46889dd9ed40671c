"""The synthesis pipeline shared by the data-building methods (rm-dpo and its baselines).

prompts -> images (N candidates, image reward, keep the best) -> questions -> responses (K per image)
-> response reward -> pair selection + dataset. Each component is a swappable module in this package with a
micro and a real implementation chosen by config; each step is a cached stage (harness.stages) keyed by its
config slice, the upstream stage's key, the models' content fingerprints and the code version, so a killed
run resumes at the first unfinished step. Candidate images are generated and scored inside one stage and only
the kept image is written (25k candidate PNGs for a 5k run would be ~200 MB for nothing).

A baseline swaps one piece: e.g. `random-pairs` passes its own `select_fn(items, n_pairs) -> (pairs, selection_stats)`
(items: {"id", "question", "kind", "category", "image_reward", "responses", "scores", "scene"}; a pair adds "chosen",
"rejected", "chosen_score", "rejected_score", "chosen_model", "rejected_model"; see select.select_pairs),
`clip-rank` its own `score_fn(image_paths, questions, responses) -> scores per item`, `sft` uses the
dataset's chosen column only, an `oracle` scores with the scene ground truth (micro items carry the drawn
scene). Give a custom function a stable `__name__`: it is part of the
cache key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.io import read_jsonl, write_jsonl
from harness.stages import Stages, code_version, progress
from pipelines.synth.image_reward import ImageRewardConfig
from pipelines.synth.images import ImagesConfig
from pipelines.synth.prompts import PromptsConfig
from pipelines.synth.questions import QuestionsConfig
from pipelines.synth.responders import POLICY, RespondersConfig
from pipelines.synth.response_reward import ResponseRewardConfig
from pipelines.synth.select import SelectConfig

CODE = ("pipelines.synth", "harness.world", "harness.models")


@dataclass
class SynthConfig:
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    image_reward: ImageRewardConfig = field(default_factory=ImageRewardConfig)
    questions: QuestionsConfig = field(default_factory=QuestionsConfig)
    responders: RespondersConfig = field(default_factory=RespondersConfig)
    response_reward: ResponseRewardConfig = field(default_factory=ResponseRewardConfig)
    select: SelectConfig = field(default_factory=SelectConfig)


def _slice(obj) -> dict:
    return dataclasses.asdict(obj)


def _load_image(stage_dir: Path, pid: int):
    from PIL import Image
    with Image.open(stage_dir / "images" / f"{pid:06d}.png") as im:
        return im.convert("RGB")


def synthesize(cfg: SynthConfig, *, n_pairs: int, seed: int, world: str, policy: str, stages: Stages,
               out_dir: Path | None, policy_adapter: str | None = None, prompt_offset: int = 0, title: str = "",
               score_fn: Callable | None = None, select_fn: Callable | None = None) -> dict:
    """Run (or resume) the pipeline; writes out_dir/dataset and returns the card summary.

    `prompt_offset` shifts the prompt seed so a second on-policy round draws new images.
    Baseline hooks (their `__name__` is part of the stage keys, so it must name their config):
    `score_fn(images, questions, responses) -> scores` replaces the response reward model;
    `select_fn(items, n_pairs=...) -> (pairs, selection)` replaces pair selection (micro items carry `scene`,
    the drawn scene, for ground-truth methods).
    """
    from pipelines.synth import dataset, image_reward, images, prompts, questions, responders, response_reward, select
    from pipelines.synth.models import fingerprint

    code = code_version(*CODE)
    prompts.check_capacity(cfg.prompts, n_pairs)
    n = prompts.n_prompts(cfg.prompts, n_pairs)
    pseed = seed * 7919 + prompt_offset

    # 1. prompts
    def do_prompts(d: Path):
        write_jsonl(d / "prompts.jsonl", prompts.make_prompts(cfg.prompts, n, pseed))
        return {"prompts": n}
    st_p = stages.run("prompts", {"cfg": _slice(cfg.prompts), "n": n, "seed": pseed, "code": code}, do_prompts)

    # 2. images: N candidates per prompt, image reward, keep the best
    def do_images(d: Path):
        rows = read_jsonl(st_p.path / "prompts.jsonl")
        gen = images.make_generator(cfg.images)
        scorer = image_reward.ClipScorer(cfg.image_reward)
        (d / "images").mkdir()
        kept, chunk = [], 256
        with progress("images: generate + score", len(rows)) as bar:
            for start in range(0, len(rows), chunk):
                part = rows[start:start + chunk]
                cands = [gen.candidates(r) for r in part]
                flat = [c for cs in cands for c in cs]
                scores = scorer.score([c["image"] for c in flat], [r["prompt"] for r, cs in zip(part, cands) for _ in cs])
                k = 0
                for r, cs in zip(part, cands):
                    best, bi = image_reward.keep_best(cs, scores[k:k + len(cs)])
                    best["image"].save(d / "images" / f"{r['id']:06d}.png")
                    kept.append({"id": r["id"], "category": r["category"], "prompt": r["prompt"],
                                 "scene": best.get("scene", r.get("scene")), "kept": bi,
                                 "image_reward": scores[k + bi],
                                 "candidates": [{"guidance": c["guidance"], "seed": c["seed"], "reward": s,
                                                 "defects": c.get("defects")}
                                                for c, s in zip(cs, scores[k:k + len(cs)])]})
                    k += len(cs)
                bar(len(kept))
        write_jsonl(d / "kept.jsonl", kept)
        return {"images": len(kept) * cfg.images.n, "kept": len(kept)}
    st_i = stages.run("images", {"images": _slice(cfg.images), "image_reward": _slice(cfg.image_reward),
                                 "clip": fingerprint(cfg.image_reward.model), "up": st_p.key, "code": code}, do_images)

    # 3. one instruction question per kept image
    def do_questions(d: Path):
        rows = read_jsonl(st_i.path / "kept.jsonl")
        write_jsonl(d / "questions.jsonl", [{"id": r["id"], **questions.make_question(cfg.questions, r, pseed)}
                                            for r in rows])
        return {"questions": len(rows)}
    st_q = stages.run("questions", {"cfg": _slice(cfg.questions), "seed": pseed, "up": st_i.key, "code": code},
                      do_questions)

    # 4. K responses per image
    def do_responses(d: Path):
        qs = read_jsonl(st_q.path / "questions.jsonl")
        paths = [str(st_i.path / "images" / f"{q['id']:06d}.png") for q in qs]
        total = len(cfg.responders.models) * cfg.responders.samples_per_model
        with progress(f"responses: {total} per image x {len(qs)}", total * len(qs)) as bar:
            resp = responders.respond(cfg.responders, paths, [q["question"] for q in qs], policy, pseed,
                                      policy_adapter=policy_adapter, progress=bar)
        write_jsonl(d / "responses.jsonl", [{"id": q["id"], "responses": r} for q, r in zip(qs, resp)])
        return {"responses": sum(len(r) for r in resp)}
    models_fp = {m: fingerprint(policy if m == POLICY else m) for m in cfg.responders.models}
    if policy_adapter:
        models_fp["policy_adapter"] = _dir_fingerprint(policy_adapter)
    st_r = stages.run("responses", {"cfg": _slice(cfg.responders), "models": models_fp, "seed": pseed,
                                    "up": st_q.key, "code": code}, do_responses)

    # 5. response reward
    def do_rewards(d: Path):
        qs = read_jsonl(st_q.path / "questions.jsonl")
        rs = read_jsonl(st_r.path / "responses.jsonl")
        imgs = [str(st_i.path / "images" / f"{q['id']:06d}.png") for q in qs]
        fn = score_fn or (lambda i, q, r: response_reward.score_responses(cfg.response_reward, i, q, r))
        scores = fn(imgs, [q["question"] for q in qs], [r["responses"] for r in rs])
        write_jsonl(d / "scores.jsonl", [{"id": q["id"], "scores": s} for q, s in zip(qs, scores)])
        return {"scored": sum(len(s) for s in scores)}
    rm_name = response_reward.model_name(cfg.response_reward) if score_fn is None else getattr(score_fn, "__name__", "custom")
    st_s = stages.run("rewards", {"cfg": _slice(cfg.response_reward), "rm": fingerprint(rm_name) if score_fn is None else rm_name,
                                  "up": [st_r.key, st_i.key], "code": code}, do_rewards)

    # 6. pair selection + TRL dataset with its card
    def do_pairs(d: Path):
        kept = {r["id"]: r for r in read_jsonl(st_i.path / "kept.jsonl")}
        qs = read_jsonl(st_q.path / "questions.jsonl")
        rs = {r["id"]: r["responses"] for r in read_jsonl(st_r.path / "responses.jsonl")}
        ss = {r["id"]: r["scores"] for r in read_jsonl(st_s.path / "scores.jsonl")}
        items = [{"id": q["id"], "question": q["question"], "kind": q["kind"], "category": kept[q["id"]]["category"],
                  "image_reward": kept[q["id"]]["image_reward"], "responses": rs[q["id"]], "scores": ss[q["id"]],
                  "scene": kept[q["id"]].get("scene")}   # micro ground truth (None in the real world)
                 for q in qs]
        fn = select_fn or (lambda its, n_pairs: select.select_pairs(cfg.select, its, world, n_pairs))
        pairs, selection = fn(items, n_pairs=n_pairs)
        write_jsonl(d / "pairs.jsonl", pairs)
        components = {"prompts": cfg.prompts.source, "images": f"{cfg.images.backend} {cfg.images.model}".strip()
                      + f", {cfg.images.n} per prompt at guidance {cfg.images.guidances}",
                      "image_reward": f"CLIP score ({cfg.image_reward.model}), keep argmax",
                      "questions": cfg.questions.backend,
                      "responders": f"{cfg.responders.models} x {cfg.responders.samples_per_model} at T={cfg.responders.temperature}",
                      "response_reward": rm_name, "select": _slice(cfg.select) if select_fn is None else getattr(select_fn, "__name__", "custom")}
        imgs = {p["id"]: _load_image(st_i.path, p["id"]) for p in pairs}
        return dataset.write_dataset(pairs, imgs, d, selection, components, title or "preference dataset")
    st_d = stages.run("pairs", {"cfg": _slice(cfg.select), "n": n_pairs, "world": world, "up": st_s.key,
                                "custom": None if select_fn is None else getattr(select_fn, "__name__", "custom"),
                                "code": code}, do_pairs)
    if out_dir is not None:
        _link(st_d.path / "dataset", out_dir / "dataset")
    timings = {s.name: s.seconds for s in (st_p, st_i, st_q, st_r, st_s, st_d)}
    return {**st_d.output, "timings": timings, "dataset_dir": str(st_d.path / "dataset")}


def _dir_fingerprint(path: str) -> str:
    from harness.io import file_sha256, stable_hash
    p = Path(path)
    return stable_hash({f.name: file_sha256(f) for f in sorted(p.iterdir()) if f.is_file()})


def _link(src: Path, dst: Path) -> None:
    """Make the dataset visible at dst (hard-linked copy: the run directory must stand alone)."""
    import os
    import shutil
    if dst.resolve() == src.resolve():
        return
    if dst.exists():
        shutil.rmtree(dst)
    try:   # hard links: free, and the copy stays valid if the cache is pruned
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
