"""The synthesis pipeline shared by the data-building methods (rm-dpo and its baselines).

prompts -> images (N candidates, image reward, keep the best) -> questions -> responses (K per image)
-> response reward -> pair selection + dataset. Each component is a swappable module in this package with a
micro and a real implementation chosen by config; each step is a cached stage (harness.stages) keyed by its
config slice, the upstream stage's key, the models' content fingerprints and the code version, so a killed
run resumes at the first unfinished step. Candidate images are generated and scored inside one stage and only
the kept image is written (25k candidate PNGs for a 5k run would be ~200 MB for nothing).

A method changes what it needs through two hooks (harness.method.Scorer / Selector, registered objects named
once by the method and applied in every round): a scorer replaces the response reward model (`clip-rank`
scores with CLIP, `random-pairs` at random), a selector replaces pair selection (`oracle` re-scores with the
scene ground truth that micro items carry as `scene`). The defaults are pipelines.synth.hooks. The rewards and
pairs stages are keyed on the hook's name, config and code, so a changed hook never reuses an old stage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from harness.io import read_jsonl, write_jsonl
from harness.method import Scorer, Selector
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
               out_dir: Path | None, scorer: Scorer | None = None, selector: Selector | None = None,
               policy_adapter: str | None = None, prompt_offset: int = 0, title: str = "") -> dict:
    """Run (or resume) the pipeline; writes out_dir/dataset and returns the card summary.

    `prompt_offset` shifts the prompt seed so a second on-policy round draws new images. `scorer` scores the
    responses (default pipelines.synth.hooks.RewardModelScorer: the configured response reward model), `selector`
    makes the pairs (default RulesSelector: pipelines.synth.select); their stages are keyed on the hooks' `key()`
    (name, config, code).
    """
    from pipelines.synth import prompts
    from pipelines.synth.hooks import RewardModelScorer, RulesSelector
    scorer = scorer or RewardModelScorer(cfg.response_reward)
    selector = selector or RulesSelector(cfg.select, world)

    prompts.check_capacity(cfg.prompts, n_pairs)
    run = _Synthesis(cfg, stages, code_version(*CODE), seed * 7919 + prompt_offset, world)
    st_p = run.prompts(prompts.n_prompts(cfg.prompts, n_pairs))
    st_i = run.images(st_p)
    st_q = run.questions(st_i)
    st_r = run.responses(st_q, st_i, policy, policy_adapter)
    st_s = run.rewards(st_r, st_q, st_i, scorer)
    st_d = run.pairs(st_s, st_r, st_q, st_i, selector, scorer, n_pairs, title)
    if out_dir is not None:
        _link(st_d.path / "dataset", out_dir / "dataset")
    timings = {s.name: s.seconds for s in (st_p, st_i, st_q, st_r, st_s, st_d)}
    return {**st_d.output, "timings": timings, "dataset_dir": str(st_d.path / "dataset")}


@dataclass
class _Synthesis:
    """The six cached steps of one synthesis; each returns its harness.stages StageResult."""
    cfg: SynthConfig
    stages: Stages
    code: str
    pseed: int
    world: str

    def prompts(self, n: int):
        from pipelines.synth import prompts

        def do(d: Path):
            write_jsonl(d / "prompts.jsonl", prompts.make_prompts(self.cfg.prompts, n, self.pseed))
            return {"prompts": n}
        return self.stages.run("prompts", {"cfg": _slice(self.cfg.prompts), "n": n, "seed": self.pseed,
                                           "code": self.code}, do)

    def images(self, st_p):
        """N candidates per prompt, image reward, keep the best."""
        from pipelines.synth.models import fingerprint
        cfg = self.cfg
        return self.stages.run("images", {"images": _slice(cfg.images), "image_reward": _slice(cfg.image_reward),
                                          "clip": fingerprint(cfg.image_reward.model), "up": st_p.key,
                                          "code": self.code},
                               lambda d: _generate_and_keep(cfg, read_jsonl(st_p.path / "prompts.jsonl"), d))

    def questions(self, st_i):
        """One instruction question per kept image."""
        from pipelines.synth import questions

        def do(d: Path):
            rows = read_jsonl(st_i.path / "kept.jsonl")
            write_jsonl(d / "questions.jsonl", [{"id": r["id"], **questions.make_question(self.cfg.questions, r,
                                                                                          self.pseed)}
                                                for r in rows])
            return {"questions": len(rows)}
        return self.stages.run("questions", {"cfg": _slice(self.cfg.questions), "seed": self.pseed,
                                             "up": st_i.key, "code": self.code}, do)

    def responses(self, st_q, st_i, policy: str, policy_adapter: str | None):
        """K responses per image."""
        from pipelines.synth import responders
        from pipelines.synth.models import fingerprint
        cfg = self.cfg.responders

        def do(d: Path):
            qs = read_jsonl(st_q.path / "questions.jsonl")
            total = len(cfg.models) * cfg.samples_per_model
            with progress(f"responses: {total} per image x {len(qs)}", total * len(qs)) as bar:
                resp = responders.respond(cfg, _image_paths(st_i, qs), [q["question"] for q in qs], policy,
                                          self.pseed, policy_adapter=policy_adapter, progress=bar)
            write_jsonl(d / "responses.jsonl", [{"id": q["id"], "responses": r} for q, r in zip(qs, resp)])
            return {"responses": sum(len(r) for r in resp)}
        models_fp = {m: fingerprint(policy if m == POLICY else m) for m in cfg.models}
        if policy_adapter:
            models_fp["policy_adapter"] = _dir_fingerprint(policy_adapter)
        return self.stages.run("responses", {"cfg": _slice(cfg), "models": models_fp, "seed": self.pseed,
                                             "up": st_q.key, "code": self.code}, do)

    def rewards(self, st_r, st_q, st_i, scorer: Scorer):
        def do(d: Path):
            qs = read_jsonl(st_q.path / "questions.jsonl")
            rs = read_jsonl(st_r.path / "responses.jsonl")
            scores = scorer(_image_paths(st_i, qs), [q["question"] for q in qs], [r["responses"] for r in rs])
            write_jsonl(d / "scores.jsonl", [{"id": q["id"], "scores": s} for q, s in zip(qs, scores)])
            return {"scored": sum(len(s) for s in scores)}
        return self.stages.run("rewards", {"scorer": scorer.key(), "up": [st_r.key, st_i.key], "code": self.code},
                               do)

    def pairs(self, st_s, st_r, st_q, st_i, selector: Selector, scorer: Scorer, n_pairs: int, title: str):
        """Pair selection + the TRL dataset with its card."""
        from pipelines.synth import dataset

        def do(d: Path):
            pairs, selection = selector(_items(st_i, st_q, st_r, st_s), n_pairs=n_pairs)
            write_jsonl(d / "pairs.jsonl", pairs)
            imgs = {p["id"]: _load_image(st_i.path, p["id"]) for p in pairs}
            return dataset.write_dataset(pairs, imgs, d, selection, _components(self.cfg, scorer, selector),
                                         title or "preference dataset")
        return self.stages.run("pairs", {"selector": selector.key(), "n": n_pairs, "world": self.world,
                                         "up": st_s.key, "code": self.code}, do)


def _generate_and_keep(cfg: SynthConfig, rows: list[dict], d: Path) -> dict:
    from pipelines.synth import image_reward, images
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
                kept.append(_keep_best(r, cs, scores[k:k + len(cs)], d))
                k += len(cs)
            bar(len(kept))
    write_jsonl(d / "kept.jsonl", kept)
    return {"images": len(kept) * cfg.images.n, "kept": len(kept)}


def _keep_best(row: dict, cands: list[dict], scores: list[float], d: Path) -> dict:
    from pipelines.synth import image_reward
    best, bi = image_reward.keep_best(cands, scores)
    best["image"].save(d / "images" / f"{row['id']:06d}.png")
    return {"id": row["id"], "category": row["category"], "prompt": row["prompt"],
            "scene": best.get("scene", row.get("scene")), "kept": bi, "image_reward": scores[bi],
            "candidates": [{"guidance": c["guidance"], "seed": c["seed"], "reward": s, "defects": c.get("defects")}
                           for c, s in zip(cands, scores)]}


def _image_paths(st_i, qs: list[dict]) -> list[str]:
    return [str(st_i.path / "images" / f"{q['id']:06d}.png") for q in qs]


def _items(st_i, st_q, st_r, st_s) -> list[dict]:
    kept = {r["id"]: r for r in read_jsonl(st_i.path / "kept.jsonl")}
    rs = {r["id"]: r["responses"] for r in read_jsonl(st_r.path / "responses.jsonl")}
    ss = {r["id"]: r["scores"] for r in read_jsonl(st_s.path / "scores.jsonl")}
    return [{"id": q["id"], "question": q["question"], "kind": q["kind"], "category": kept[q["id"]]["category"],
             "image_reward": kept[q["id"]]["image_reward"], "responses": rs[q["id"]], "scores": ss[q["id"]],
             "scene": kept[q["id"]].get("scene")}   # micro ground truth (None in the real world)
            for q in read_jsonl(st_q.path / "questions.jsonl")]


def _components(cfg: SynthConfig, scorer: Scorer, selector: Selector) -> dict:
    return {"prompts": cfg.prompts.source, "images": f"{cfg.images.backend} {cfg.images.model}".strip()
            + f", {cfg.images.n} per prompt at guidance {cfg.images.guidances}",
            "image_reward": f"CLIP score ({cfg.image_reward.model}), keep argmax",
            "questions": cfg.questions.backend,
            "responders": f"{cfg.responders.models} x {cfg.responders.samples_per_model} at T={cfg.responders.temperature}",
            "response_reward": scorer.describe(), "select": selector.describe()}


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
