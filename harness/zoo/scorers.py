"""Training of the zoo's scorers: the CLIP image-text scorer (LiT-style) and the response reward models.

Reward-model labels come from ground truth the way human raters would give them, with their noise: a response's
quality is the objects it gets right minus twice the objects it invents, and malformed / repeated / empty answers
lose (docs/micro-world.md: a scorer that ignores degeneration teaches DPO to degenerate); ~10 % of pair labels are flipped.
"""

from __future__ import annotations

import random
import time

import torch
import torch.nn.functional as F

from harness.world import texts
from harness.world.generator import _draw, prompt_text
from harness.world.scene import Scene
from harness.zoo.data import pad_batch
from harness.zoo.train import _log, cosine_lr, set_lr

# ---------------------------------------------------------------- CLIP (LiT: locked image tower)


def _features(out) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4 and an output object (pooler_output) in 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def clip_text_ids(tokenizer, strings: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [tokenizer(s)["input_ids"] for s in strings]      # the CLIP tokenizer appends </s> (pooling token)
    return pad_batch(seqs, tokenizer.pad_token_id)


def perturbed_text(scene: Scene, rng: random.Random) -> str:
    """A hard negative prompt: the scene with a generator-style defect (missing / recoloured / extra object)."""
    for _ in range(10):
        drawn, defects, _ = _draw(scene, 5.0 if rng.random() < 0.7 else 11.0, rng)
        if defects and drawn.key() != scene.key():
            return prompt_text(drawn)
    return prompt_text(scene)


def train_clip(clip, tokenizer, pixels: torch.Tensor, scenes: list[Scene], steps: int, batch: int, lr: float,
               seed: int) -> None:
    """Contrastive training of the text tower + projections; the vision tower stays frozen (its pooled output is
    cached). Each batch adds one hard-negative text per image (a defective version of its prompt)."""
    for p in clip.vision_model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        pooled = torch.cat([clip.vision_model(pixel_values=pixels[i:i + 256]).pooler_output
                            for i in range(0, len(scenes), 256)])
    params = [p for p in clip.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    rng = random.Random(f"clip:{seed}")
    torch.manual_seed(seed)
    clip.train()
    t0 = time.time()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, lr))
        idx = [rng.randrange(len(scenes)) for _ in range(batch)]
        pos = [prompt_text(scenes[i]) if rng.random() < 0.5 else texts.describe(scenes[i]) for i in idx]
        neg = [perturbed_text(scenes[i], rng) for i in idx]
        ids, mask = clip_text_ids(tokenizer, pos + neg)
        t = F.normalize(_features(clip.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)
        v = F.normalize(clip.visual_projection(pooled[torch.tensor(idx)]), dim=-1)
        logits = clip.logit_scale.exp() * v @ t.T                     # [B, 2B]: positives on the diagonal
        target = torch.arange(batch)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :batch].T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            _log(f"clip step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
    clip.eval()


@torch.no_grad()
def clip_scores(clip, tokenizer, pixels: torch.Tensor, strings: list[str]) -> torch.Tensor:
    v = F.normalize(_features(clip.get_image_features(pixel_values=pixels)), dim=-1)
    ids, mask = clip_text_ids(tokenizer, strings)
    t = F.normalize(_features(clip.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)
    return v @ t.T


def clip_checks(clip, tokenizer, eval_pixels, eval_scenes, cand_pixels, cand_groups, group: int = 32) -> dict:
    """Retrieval top-1 among groups of `group` held-out eval scenes (chance 1/group), and how often CLIP ranks
    the candidate with fewer generator defects above one with more (pairs of the same prompt)."""
    hits_i2t = hits_t2i = n = 0
    for i in range(0, len(eval_scenes) - group + 1, group):
        sims = clip_scores(clip, tokenizer, eval_pixels[i:i + group], [prompt_text(s) for s in eval_scenes[i:i + group]])
        hits_i2t += int((sims.argmax(1) == torch.arange(group)).sum())
        hits_t2i += int((sims.argmax(0) == torch.arange(group)).sum())
        n += group
    right = total = 0
    for (start, prompt, n_defects) in cand_groups:
        s = clip_scores(clip, tokenizer, cand_pixels[start:start + len(n_defects)], [prompt])[:, 0].tolist()
        for a in range(len(n_defects)):
            for b in range(len(n_defects)):
                if n_defects[a] < n_defects[b]:
                    total += 1
                    right += s[a] > s[b]
    return {"retrieval_i2t_top1": round(hits_i2t / max(1, n), 4), "retrieval_t2i_top1": round(hits_t2i / max(1, n), 4),
            "retrieval_chance": round(1 / group, 4), "retrieval_n": n,
            "defect_pair_acc": round(right / max(1, total), 4), "defect_pairs": total}


# ---------------------------------------------------------------- reward-model preference data

def response_quality(scene: Scene, question: str, answer: str, response: str) -> float:
    """Ground-truth quality of a response (what a careful rater would reward)."""
    if not response.strip():
        return -4.0
    penalty = 0.0 if texts.is_well_formed(response) else -3.0
    if question == "describe this image .":
        objs = texts.mentioned_objects(response)
        uniq = set(objs)
        correct = len(uniq & scene.classes)
        halluc = len(uniq - scene.classes)
        return correct - 2.0 * halluc - 1.0 * (len(objs) - len(uniq)) + penalty
    got = texts.first_sentence(response).strip()
    want = texts.first_sentence(answer).strip()
    if texts.parse_yes_no(answer) is not None:
        ok = texts.parse_yes_no(response) == texts.parse_yes_no(answer)
    else:
        ok = got == want
    return (1.0 if ok else -1.0) + penalty



def degrade(response: str, rng: random.Random) -> str:
    """Malformed variants raters penalise: stutter, truncation, a repeated phrase, or nothing."""
    toks = response.split()
    kind = rng.choice(["stutter", "truncate", "repeat", "empty"])
    if kind == "empty" or not toks:
        return ""
    if kind == "stutter":
        i = rng.randrange(len(toks))
        return " ".join(toks[:i] + [toks[i]] * 4 + toks[i + 1:])
    if kind == "truncate":
        return " ".join(toks[:max(1, len(toks) * 2 // 3)])
    half = toks[: max(2, len(toks) // 2)]
    return " ".join(toks[:-1] + ["and"] + half[2:] + ["."]) if len(toks) > 3 else " ".join(toks * 3)


def swap_hallucination(scene: Scene, rng: random.Random) -> str | None:
    """The true description with one object replaced by a same-theme absent one (same colour, size, slot): a
    fluent, well-formed answer that only the image can tell from the truth."""
    absent = scene.cooccurring_absent() or scene.absent_classes()
    if not absent:
        return None
    objs = list(scene.objects)
    i = rng.randrange(len(objs))
    o = objs[i]
    objs[i] = type(o)(rng.choice(absent), o.color, o.size, o.slot)
    return texts.describe_objects(objs)


def omit_object(scene: Scene, rng: random.Random) -> str | None:
    """The true description with one object left out: correct but less complete (a rater prefers the full one)."""
    objs = list(scene.objects)
    if len(objs) < 2:
        return None
    del objs[rng.randrange(len(objs))]
    return texts.describe_objects(objs)


def preference_pairs(items: list[dict], flip: float, rng: random.Random) -> list[dict]:
    """items: {scene, image, question, answer, responses}; returns chosen/rejected pairs with label noise.

    Sampled responses are paired at random (ties dropped). Describe items also get truth-vs-swapped-object pairs
    (kind "hallucination") and truth-vs-one-object-omitted pairs (kind "omission"), and yes/no items a correct-vs-wrong answer pair (kind "grounding"): pairs an
    image-blind rater cannot judge, as in real preference sets where the rejected answer is fluent but wrong."""
    pairs = []

    def add(it, good: str, bad: str, kind: str) -> None:
        flipped = rng.random() < flip
        c, r = (bad, good) if flipped else (good, bad)
        pairs.append({"image": it["image"], "question": it["question"], "chosen": c, "rejected": r,
                      "margin": 2.0, "flipped": flipped, "kind": kind})

    for it in items:
        if it["question"] == "describe this image .":
            for _ in range(2):
                swapped = swap_hallucination(it["scene"], rng)
                if swapped is not None and swapped != it["answer"]:
                    add(it, it["answer"], swapped, "hallucination")
            # truth vs truth minus one object: without these, token-level pooling learns "fewer objects is safer"
            omitted = omit_object(it["scene"], rng)
            if omitted is not None and omitted != it["answer"]:
                add(it, it["answer"], omitted, "omission")
        elif texts.parse_yes_no(it["answer"]) is not None:
            # correct vs wrong yes/no answer: identical text statistics, only the image decides
            add(it, it["answer"], "no ." if texts.parse_yes_no(it["answer"]) == "yes" else "yes .", "grounding")
        scored = [(response_quality(it["scene"], it["question"], it["answer"], r), r) for r in dict.fromkeys(it["responses"])]
        rng.shuffle(scored)
        for (qa, ra), (qb, rb) in zip(scored[::2], scored[1::2]):
            if qa == qb:
                continue
            chosen, rejected = (ra, rb) if qa > qb else (rb, ra)
            flipped = rng.random() < flip
            if flipped:
                chosen, rejected = rejected, chosen
            kind = "describe" if it["question"] == "describe this image ." else "qa"
            pairs.append({"image": it["image"], "question": it["question"], "chosen": chosen, "rejected": rejected,
                          "margin": abs(qa - qb), "flipped": flipped, "kind": kind})
    return pairs


def train_reward_model(rm, encode, pairs: list[dict], steps: int, batch: int, lr: float, seed: int,
                       label: str) -> None:
    """Bradley-Terry: maximise log sigmoid(r(chosen) - r(rejected)). `encode(rows, key)` -> model kwargs."""
    params = [p for p in rm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = random.Random(f"{label}:{seed}")
    torch.manual_seed(seed)
    rm.train()
    t0 = time.time()
    for step in range(steps):
        set_lr(opt, cosine_lr(step, steps, lr, warmup=10))
        rows = [pairs[rng.randrange(len(pairs))] for _ in range(batch)]
        r = rm.__call__(**encode(rows + rows, ["chosen"] * len(rows) + ["rejected"] * len(rows)))
        if hasattr(r, "logits"):
            r = r.logits[:, 0]
        loss = -F.logsigmoid(r[:batch] - r[batch:]).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % max(1, steps // 5) == 0 or step == steps - 1:
            _log(f"{label} step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
    rm.eval()
