"""`harness zoo build`: train the micro zoo from a seed, measure each model's self-checks, write cards + MANIFEST.

Order: render + cache train/eval scenes -> (a) vision tower pre-training -> micro-clip (LiT) -> micro-llava policy
(SFT on web-noisy captions and QA, tower frozen) -> responders a/b -> preference set sampled from the policy and
responders -> micro-rm (image-aware) and micro-rm-blind (image-blind twin), Bradley-Terry.
Deterministic given the seed (one torch thread, fixed step counts, seeded samplers).
"""

from __future__ import annotations

import json
import platform
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.io import write_json
from harness.zoo import store


@dataclass(frozen=True)
class BuildPlan:
    sizes: str = "tiny"                 # architectures.TINY / REDUCED
    n_train: int = 4000                 # train-split scenes for vision, CLIP and SFT
    n_eval: int = 200                   # eval-split scenes for the self-checks
    # 4800, not 1200: at 1200 steps the tower named a quadrant's class right only 90 % of the time, the policy's
    # hallucinations were misreadings of what IS there, and no training of the language model fixed them (SFT on
    # the true descriptions: CHAIRs -0.024, n.s.; `python -m benchmarks.headroom`). At 4800: 95 % (~2 min more).
    vision_steps: int = 4800
    clip_steps: int = 250
    # 2700, not 900: at 900 steps the policy read a quadrant's class far worse than the tower encodes it (probe 95 %;
    # on micro-AMBER it misread 121 objects, 60 of them as a second copy of a class it had already named), so
    # its hallucinations were misreadings that no preference pair fixed: every method traded repeated objects (not
    # well-formed) for absent ones (AMBER CHAIR) and back (`python -m benchmarks.hallucination_kinds`). At 2700:
    # 82 misreadings (12 repeats), well-formed 0.71 -> 0.95; with few repeats left to trade for absent classes,
    # rm-dpo's removal of the caption prior's invented objects shows in AMBER CHAIR (-4.9 / -5.0 at 2k, seeds
    # 0 / 1). ~5 min more.
    policy_steps: int = 2700
    responder_steps: int = 600
    batch: int = 64
    # 1500 scenes, 3 policy samples each, 1200 steps, not 500 / 1 / 300: trained on more of the policy's own
    # answers, the RM picked chosen answers that taught rm-dpo 2k CHAIRs -0.136 with recall -4.2 (was -0.092 /
    # -5.6; same seed, `harness run --method rm-dpo --size 2k`). Pairing every two answers instead of disjoint
    # pairs was worse (recall -11.4): the synthetic hallucination / omission pairs were drowned out.
    rm_scenes: int = 1500               # train scenes whose sampled responses form the preference set
    rm_eval_scenes: int = 150           # eval scenes for held-out pair accuracy
    rm_steps: int = 1200
    rm_batch: int = 32
    label_flip: float = 0.1
    rm_policy_samples: int = 3          # sampled (T = 1) policy answers per preference item, beside one greedy
    responders: dict = field(default_factory=lambda: {
        # smaller LM, noisier captions / a wider LM, cleaner captions: diverse candidate answers
        "micro-responder-a": {"text_hidden": 64, "text_layers": 1, "text_intermediate": 128, "caption_noise": 0.35},
        "micro-responder-b": {"text_hidden": 96, "text_layers": 2, "text_intermediate": 192, "caption_noise": 0.05},
    })


FULL = BuildPlan()
REDUCED_PLAN = BuildPlan(sizes="reduced", n_train=160, n_eval=32, vision_steps=15, clip_steps=5, policy_steps=12,
                         responder_steps=4, batch=16, rm_scenes=12, rm_eval_scenes=8, rm_steps=4, rm_batch=8,
                         responders={"micro-responder-a": {"caption_noise": 0.35},
                                     "micro-responder-b": {"caption_noise": 0.05}})


def _versions() -> dict:
    import tokenizers
    import torch
    import transformers
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


class Builder:
    def __init__(self, seed: int, out: Path, plan: BuildPlan, only: list[str] | None):
        import torch

        from harness.world.scene import sample_scenes
        from harness.zoo import architectures as A
        from harness.zoo.data import pixel_tensor, pixels_and_patch_labels, vision_targets

        torch.set_num_threads(1)
        torch.manual_seed(seed)
        self.seed, self.out, self.plan, self.only = seed, out, plan, only
        self.A = A
        base = A.TINY if plan.sizes == "tiny" else A.REDUCED
        self.sizes = base
        t0 = time.time()
        self.train_scenes = sample_scenes(plan.n_train, "train", seed)
        self.eval_scenes = sample_scenes(plan.n_eval, "eval", seed)
        self.pixels, patch_labels = pixels_and_patch_labels(self.train_scenes, patch=base.patch_size)
        self.targets = vision_targets(self.train_scenes)
        self.targets["patch"] = patch_labels
        self.eval_pixels, eval_patch = pixels_and_patch_labels(self.eval_scenes, patch=base.patch_size)
        self.eval_targets = vision_targets(self.eval_scenes)
        self.eval_targets["patch"] = eval_patch
        self.pixel_tensor = pixel_tensor
        self.processor = A.build_processor(base)
        self.log(f"rendered {plan.n_train} train + {plan.n_eval} eval scenes ({time.time() - t0:.0f}s)")

    @staticmethod
    def log(msg: str) -> None:
        print(f"[zoo] {msg}", flush=True)

    def wanted(self, name: str) -> bool:
        return self.only is None or name in self.only

    def save(self, name: str, model, processor, card: dict, t0: float) -> None:
        d = self.out / name
        if d.exists():
            shutil.rmtree(d)
        model.save_pretrained(d, safe_serialization=True)
        processor.save_pretrained(d)
        card = {"name": name, "params": self.A.n_params(model), "seed": self.seed,
                "build_seconds": round(time.time() - t0, 1), "plan": self.plan.sizes, **card}
        write_json(d / "card.json", card)
        store.update_manifest(self.out, name, {"seed": self.seed, "reduced": self.plan.sizes != "tiny",
                                               "versions": _versions(), "schema": store.MANIFEST_SCHEMA})
        self.log(f"saved {name}: {json.dumps(card.get('checks', {}))}")

    # ------------------------------------------------------------ (a) vision tower
    def vision(self):
        """Pre-train the tower once, on first use: rebuilding only the reward models (which start from the saved
        policy) skips it."""
        if hasattr(self, "tower"):
            return
        from transformers import CLIPVisionModel

        from harness.zoo.train import pretrain_vision, probe_accuracy, tower_features
        t0 = time.time()
        import torch
        torch.manual_seed(self.seed)
        tower = CLIPVisionModel(self.A.vision_config(self.sizes))
        probe = pretrain_vision(tower, self.pixels, self.targets, self.plan.vision_steps, self.plan.batch, 3e-3,
                                self.seed)
        self.vision_checks = {k: round(v, 4) for k, v in probe_accuracy(probe, self.eval_pixels, self.eval_targets).items()}
        self.vision_seconds = round(time.time() - t0, 1)
        self.tower = tower.eval()
        for p in tower.parameters():
            p.requires_grad_(False)
        self.features = tower_features(tower, self.pixels)
        self.log(f"vision tower: {self.vision_checks} ({self.vision_seconds}s)")

    # ------------------------------------------------------------ micro-clip
    def clip(self):
        from harness.world.generator import generate_candidates, prompt_text
        from harness.world.scene import sample_scenes
        from harness.zoo.scorers import clip_checks, train_clip
        self.vision()
        t0 = time.time()
        clip = self.A.build_clip(self.sizes, seed=self.seed)
        clip.vision_model.load_state_dict(self.tower.state_dict())
        proc = self.A.build_clip_processor(self.sizes)
        train_clip(clip, proc.tokenizer, self.pixels, self.train_scenes, self.plan.clip_steps, self.plan.batch,
                   2e-3, self.seed)
        # Candidate ranking on fresh train-split prompts (the generator refuses eval prompts by design).
        import numpy as np

        from harness.zoo.data import normalise
        cand_scenes = sample_scenes(max(8, self.plan.n_eval // 4), "train", self.seed + 1000)
        groups, images = [], []
        for i, s in enumerate(cand_scenes):
            cands = generate_candidates(s, 4, seed=i)
            groups.append((len(images), prompt_text(s), [c.n_defects for c in cands]))
            images += [np.asarray(c.image) for c in cands]
        cand_pixels = normalise(np.stack(images))
        group = 32 if len(self.eval_scenes) >= 64 else 8
        checks = clip_checks(clip, proc.tokenizer, self.eval_pixels, self.eval_scenes, cand_pixels, groups, group)
        self.save("micro-clip", clip, proc, {"kind": "image-text scorer (CLIPModel, LiT: frozen pre-trained tower)",
                                             "train_size": len(self.train_scenes), "checks": checks,
                                             "vision_pretraining": self.vision_checks}, t0)

    # ------------------------------------------------------------ LLaVA policy and responders
    def llava(self, name: str, sizes, recipe, steps: int, with_describe_checks: bool = True):
        from harness.zoo.checks import describe_check, pope_check
        from harness.zoo.data import Encoder, sft_samples
        from harness.zoo.train import sft_llava
        self.vision()
        t0 = time.time()
        model = self.A.build_llava(sizes, seed=self.seed)
        model.model.vision_tower.load_state_dict(self.tower.state_dict())
        processor = self.A.build_processor(sizes)
        encoder = Encoder(processor.tokenizer, (64 // sizes.patch_size) ** 2)
        samples = sft_samples(self.train_scenes, random.Random(f"{name}:{self.seed}"), recipe)
        sft_llava(model, encoder, self.features, samples, steps, self.plan.batch, 2e-3, self.seed, label=name)
        checks = pope_check(model, processor, self.eval_scenes, self.seed)
        if with_describe_checks:
            checks.update(describe_check(model, processor, self.eval_scenes,
                                         n_sampled=min(40, len(self.eval_scenes))))
        card = {"kind": "LLaVA-architecture VLM (LlavaForConditionalGeneration)", "train_size": len(samples),
                "train_images": len(self.train_scenes), "recipe": asdict(recipe), "sft_steps": steps,
                "batch": self.plan.batch, "sizes": asdict(sizes), "checks": checks,
                "checks_on": f"{len(self.eval_scenes)} eval-split scenes (unseen in training)",
                "vision_pretraining": {**self.vision_checks, "seconds": self.vision_seconds}}
        self.save(name, model, processor, card, t0)
        return model, processor

    def policy_and_responders(self):
        """Train the wanted VLMs; ones the reward models need but `--only` excludes are loaded from the zoo."""
        from harness.zoo.data import Recipe
        self.generators = {}
        need_rm = self.wanted("micro-rm") or self.wanted("micro-rm-blind")
        specs = {"micro-llava": (self.sizes, Recipe(), self.plan.policy_steps, True)}
        for name, spec in self.plan.responders.items():
            spec = dict(spec)
            recipe = Recipe(caption_noise=spec.pop("caption_noise"))
            specs[name] = (replace(self.sizes, **spec), recipe, self.plan.responder_steps, True)
        for name, (sizes, recipe, steps, describe) in specs.items():
            if self.wanted(name) or (need_rm and not (self.out / name / "config.json").exists()):
                self.generators[name] = self.llava(name, sizes, recipe, steps, with_describe_checks=describe)
            elif need_rm:
                from transformers import AutoProcessor, LlavaForConditionalGeneration
                path = store.resolve_model(name) if self.out == store.zoo_dir() else self.out / name
                self.generators[name] = (LlavaForConditionalGeneration.from_pretrained(path, use_safetensors=True).eval(),
                                         AutoProcessor.from_pretrained(path))

    # ------------------------------------------------------------ reward models
    def preference_items(self, scenes, split_seed: int) -> list[dict]:
        from harness.world import texts
        from harness.world.render import render
        from harness.zoo.checks import generate
        from harness.zoo.scorers import degrade
        rng = random.Random(f"rm-items:{self.seed}:{split_seed}")
        items = []
        for s in scenes:
            img = render(s, 0)
            items.append({"scene": s, "image": img, "question": "describe this image .", "answer": texts.describe(s),
                          "responses": []})
            qa = rng.choice(texts.sample_questions(s, rng))
            items.append({"scene": s, "image": img, "question": qa.question, "answer": qa.answer, "responses": []})
        for gi, (name, (model, proc)) in enumerate(sorted(self.generators.items())):
            temps = (1.0,) * self.plan.rm_policy_samples + (0.0,) if name == "micro-llava" else (1.0,)
            for ti, temp in enumerate(temps):
                # seed offsets 0, 100, 200 ...: the first draw is the one a one-sample plan made
                outs = generate(model, proc, [it["image"] for it in items], [it["question"] for it in items],
                                max_new_tokens=48, temperature=temp, seed=self.seed + gi + split_seed + 100 * ti)
                for it, o in zip(items, outs):
                    it["responses"].append(o)
        for it in items:
            it["responses"].append(degrade(rng.choice(it["responses"]), rng))
            it["responses"].append(it["answer"])   # a reference-quality answer, as raters' sets include
        return items

    def reward_models(self):
        import torch

        from harness.world.scene import sample_scenes
        from harness.zoo.scorers import preference_pairs, train_reward_model
        t0 = time.time()
        rng = random.Random(f"rm:{self.seed}")
        train_scenes = sample_scenes(self.plan.rm_scenes, "train", self.seed + 2000)
        eval_scenes = sample_scenes(self.plan.rm_eval_scenes, "eval", self.seed + 2000)
        pairs = preference_pairs(self.preference_items(train_scenes, 0), self.plan.label_flip, rng)
        held_out = preference_pairs(self.preference_items(eval_scenes, 1), 0.0, rng)
        if not pairs or not held_out:
            raise HarnessError("zoo build: the preference set came out empty")
        self.log(f"preference pairs: {len(pairs)} train (flip {self.plan.label_flip}), {len(held_out)} held out "
                 f"({time.time() - t0:.0f}s)")
        policy, policy_proc = self.generators["micro-llava"]
        prep = time.time() - t0
        from harness.models.reward import chat_messages
        results = {}
        marker = policy_proc.tokenizer.convert_tokens_to_ids("assistant")   # response = tokens after "assistant :"
        for name in [n for n in ("micro-rm", "micro-rm-blind") if self.wanted(n)]:
            t1 = time.time()
            aware = name == "micro-rm"
            torch.manual_seed(self.seed)
            if aware:
                rm = self.A.build_llava_reward_model(
                    self.sizes, seed=self.seed, pooling="last+softmin",
                    response_marker_id=marker)
                rm.model.load_state_dict(policy.model.state_dict())        # init from the SFT policy
                rm.heads.lm_head.load_state_dict(policy.lm_head.state_dict())
                for p in rm.model.vision_tower.parameters():
                    p.requires_grad_(False)
                proc = policy_proc
            else:
                rm = self.A.build_text_reward_model(self.sizes, seed=self.seed, pooling="last+softmin",
                                                    response_marker_id=marker)
                rm.model.load_state_dict(policy.model.language_model.state_dict())
                rm.heads.lm_head.load_state_dict(policy.lm_head.state_dict())
                proc = policy_proc.tokenizer
            tok = policy_proc.tokenizer

            def encode(rows, keys, aware=aware, proc=proc):
                textl = [tok.apply_chat_template(chat_messages(r["question"], r[k], aware), tokenize=False)
                         for r, k in zip(rows, keys)]
                if aware:
                    return dict(proc(images=[r["image"] for r in rows], text=textl, return_tensors="pt",
                                     padding=True))
                enc = tok(textl, return_tensors="pt", padding=True)
                return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

            train_reward_model(rm, encode, pairs, self.plan.rm_steps, self.plan.rm_batch, 1e-3, self.seed, name)
            checks = self.pair_accuracy(rm, encode, held_out)
            checks["train_pair_acc"] = self.pair_accuracy(rm, encode, pairs[:len(held_out)])["pair_acc"]
            checks["chance"] = 0.5
            results[name] = checks
            card = {"kind": "image-aware reward model (LLaVA backbone; last-token head + soft-min of per-token log-prob "
                            "and head scores over the response)" if aware else
                    "image-blind twin (same LM + heads + pooling, no image)",
                    "train_size": len(pairs), "label_flip": self.plan.label_flip, "rm_steps": self.plan.rm_steps,
                    "checks": checks, "checks_on": f"{len(held_out)} held-out pairs on eval-split scenes",
                    "init": "SFT policy micro-llava", "preference_data_seconds": round(prep, 1)}
            self.save(name, rm, proc, card, t1)
        return results

    def pair_accuracy(self, rm, encode, pairs: list[dict]) -> dict:
        """Held-out pair accuracy overall and per kind (describe / qa / hallucination = swapped-object pairs /
        omission = one object left out / grounding = wrong yes-no)."""
        import torch
        wins_all: list[tuple[str, bool]] = []
        with torch.no_grad():
            for i in range(0, len(pairs), 32):
                rows = pairs[i:i + 32]
                r = rm(**encode(rows + rows, ["chosen"] * len(rows) + ["rejected"] * len(rows)))
                r = r.logits[:, 0] if hasattr(r, "logits") else r
                wins_all += [(row["kind"], bool(w)) for row, w in zip(rows, (r[:len(rows)] > r[len(rows):]).tolist())]
        out = {"pair_acc": round(sum(w for _, w in wins_all) / len(wins_all), 4), "pair_n": len(wins_all)}
        for kind in ("describe", "qa", "hallucination", "omission", "grounding"):
            ws = [w for k, w in wins_all if k == kind]
            out[f"{kind}_pair_acc"] = round(sum(ws) / len(ws), 4) if ws else None
            out[f"{kind}_pair_n"] = len(ws)
        return out


def build_zoo(seed: int = 0, out: str | None = None, reduced: bool = False, only: list[str] | None = None) -> Path:
    """Build (or with `only`, rebuild some of) the zoo into `out` (default: the zoo dir). Returns the directory."""
    unknown = [n for n in (only or []) if n not in store.ZOO_NAMES]
    if unknown:
        raise HarnessError(f"unknown zoo model(s) {unknown}; known: {', '.join(store.ZOO_NAMES)}")
    directory = Path(out) if out else store.zoo_dir()
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    b = Builder(seed, directory, REDUCED_PLAN if reduced else FULL, only)
    if b.wanted("micro-clip"):
        b.clip()
    b.policy_and_responders()
    if b.wanted("micro-rm") or b.wanted("micro-rm-blind"):
        b.reward_models()
    info = store.verify(directory)
    b.log(f"zoo built in {time.time() - t0:.0f}s: {info['files']} files, {info['bytes'] / 1e6:.2f} MB in {directory}")
    return directory
