"""Self-checks measured at build time on held-out EVAL-split scenes and written into each model's card.

These are quick build-time figures (POPE-style accuracy, CHAIR, retrieval, pair accuracy); the benchmark suites
(benchmarks/, harness.evaluate) are the reference measurements.
"""

from __future__ import annotations

import random

import torch

from harness.world import texts
from harness.world.render import render
from harness.world.scene import Scene


def _prompt(processor, question: str) -> str:
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)


@torch.no_grad()
def generate(model, processor, images, questions, max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0, batch: int = 64) -> list[str]:
    """Answers through the real inference path (processor -> vision tower -> projector -> LM)."""
    model.eval()
    tok = processor.tokenizer
    out: list[str] = []
    torch.manual_seed(seed)
    for i in range(0, len(questions), batch):
        enc = processor(images=list(images[i:i + batch]), text=[_prompt(processor, q) for q in questions[i:i + batch]],
                        return_tensors="pt", padding=True)
        kw = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 \
            else {"do_sample": False}
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, **kw)
        out += [t.strip() for t in tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
    return out


@torch.no_grad()
def yes_margin(model, processor, images, questions, batch: int = 64) -> list[float]:
    """logit("yes") - logit("no") for the first answer token: a threshold-free score for POPE AUC."""
    tok = processor.tokenizer
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    out: list[float] = []
    for i in range(0, len(questions), batch):
        enc = processor(images=list(images[i:i + batch]), text=[_prompt(processor, q) for q in questions[i:i + batch]],
                        return_tensors="pt", padding=True)
        logits = model(**enc).logits[:, -1]          # left padding: the last position is the next token
        out += (logits[:, yes] - logits[:, no]).tolist()
    return out


def auc(scores: list[float], labels: list[bool]) -> float:
    """Probability that a positive outscores a negative (ties count half): the Mann-Whitney AUC."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def pope_items(scenes: list[Scene], seed: int, per_image: int = 3) -> list[dict]:
    """POPE-style balanced items: up to 3 present objects and as many absent ones per image and split
    (random: any absent class; adversarial: absent classes of the scene's own theme)."""
    rng = random.Random(f"pope:{seed}")
    items = []
    for si, s in enumerate(scenes):
        present = sorted(s.classes)
        for split, pool in (("random", s.absent_classes()), ("adversarial", s.cooccurring_absent())):
            k = min(per_image, len(present), len(pool))
            for cls in rng.sample(present, k):
                items.append({"scene": si, "split": split, "object": cls, "label": "yes"})
            for cls in rng.sample(pool, k):
                items.append({"scene": si, "split": split, "object": cls, "label": "no"})
    return items


def pope_check(model, processor, scenes: list[Scene], seed: int = 0) -> dict:
    images = [render(s, 0) for s in scenes]
    items = pope_items(scenes, seed)
    item_images = [images[it["scene"]] for it in items]
    questions = [texts.pope_question(it["object"]) for it in items]
    answers = generate(model, processor, item_images, questions, max_new_tokens=3)
    margins = yes_margin(model, processor, item_images, questions)
    out = {}
    for split in ("random", "adversarial"):
        rows = [(it, texts.parse_yes_no(a)) for it, a in zip(items, answers) if it["split"] == split]
        n = len(rows)
        correct = sum(p == it["label"] for it, p in rows)
        yes = sum(p == "yes" for _, p in rows)
        out[f"pope_{split}_acc"] = round(correct / n, 4)
        out[f"pope_{split}_yes_ratio"] = round(yes / n, 4)
        out[f"pope_{split}_unparsed"] = sum(p is None for _, p in rows)
        out[f"pope_{split}_n"] = n
        sel = [(m, it["label"] == "yes") for it, m in zip(items, margins) if it["split"] == split]
        out[f"pope_{split}_auc"] = round(auc([m for m, _ in sel], [y for _, y in sel]), 4)
    out["pope_adversarial_gap"] = round(out["pope_random_acc"] - out["pope_adversarial_acc"], 4)
    return out


def description_stats(scenes: list[Scene], descriptions: list[str]) -> dict:
    """CHAIRs (share of descriptions with a hallucinated object), CHAIRi (hallucinated / mentioned objects),
    object recall (mentioned ground-truth objects / all ground-truth objects), well-formed share."""
    halluc_caps = halluc_mentions = mentions = covered = total_gt = well = 0
    for s, d in zip(scenes, descriptions):
        objs = set(texts.mentioned_objects(d))
        bad = objs - s.classes
        halluc_caps += bool(bad)
        halluc_mentions += len(bad)
        mentions += len(objs)
        covered += len(objs & s.classes)
        total_gt += len(s.classes)
        well += texts.is_well_formed(d)
    n = max(1, len(descriptions))
    return {"chair_s": round(halluc_caps / n, 4), "chair_i": round(halluc_mentions / max(1, mentions), 4),
            "recall": round(covered / max(1, total_gt), 4), "well_formed": round(well / n, 4)}


def describe_check(model, processor, scenes: list[Scene], n_sampled: int = 40, samples: int = 4) -> dict:
    images = [render(s, 0) for s in scenes]
    greedy = generate(model, processor, images, ["describe this image ."] * len(scenes), max_new_tokens=48)
    out = {f"describe_{k}": v for k, v in description_stats(scenes, greedy).items()}
    # Temperature-1 samples: DPO needs some samples that hallucinate and some that do not for the same image.
    sub = scenes[:n_sampled]
    rep_scenes = [s for s in sub for _ in range(samples)]
    sampled = generate(model, processor, [images[i] for i in range(len(sub)) for _ in range(samples)],
                       ["describe this image ."] * len(rep_scenes), max_new_tokens=48, temperature=1.0, seed=1)
    stats = description_stats(rep_scenes, sampled)
    mixed = 0
    for i in range(len(sub)):
        flags = {bool(set(texts.mentioned_objects(d)) - sub[i].classes) for d in sampled[i * samples:(i + 1) * samples]}
        mixed += len(flags) == 2
    out.update({"sampled_t1_chair_s": stats["chair_s"], "sampled_t1_well_formed": stats["well_formed"],
                "sampled_t1_mixed_images": round(mixed / max(1, len(sub)), 4),
                "sampled_t1_distinct": round(len(set(sampled)) / max(1, len(sampled)), 4)})
    out["example_descriptions"] = greedy[:3]
    return out
