"""Training data of the zoo: rendered image tensors, vision targets, SFT conversations, token batches.

Images are rendered once and kept as normalised tensors (the processor's own rescale + CLIP normalisation), and
frozen vision-tower features are computed once per image: training then only runs the projector + LM
(docs/micro-world.md: steps are overhead-bound, so cache everything that does not change).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from harness.world import texts
from harness.world.render import render_array
from harness.world.scene import CLASSES, COLORS, SIZES, SLOTS, TEXT_CLASSES, Scene
from harness.zoo.architectures import EOS, IMAGE_MEAN, IMAGE_STD, IMAGE_TOKEN

CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
IGNORE = -100


def normalise(arr: np.ndarray) -> torch.Tensor:
    """uint8 [N, 64, 64, 3] -> [N, 3, 64, 64] float32, exactly as the LlavaProcessor / CLIP processor does."""
    x = arr.astype(np.float32) / 255.0
    x = (x - np.array(IMAGE_MEAN, dtype=np.float32)) / np.array(IMAGE_STD, dtype=np.float32)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def pixel_tensor(scenes: list[Scene], seed: int = 0) -> torch.Tensor:
    return normalise(np.stack([render_array(s, seed) for s in scenes]))


def pixels_and_patch_labels(scenes: list[Scene], seed: int = 0, patch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Images plus, per patch, the class covering most of it (>= 1/4 of its pixels) or len(CLASSES) = background.

    Dense per-patch targets make every patch token carry object identity, which is what LLaVA's projector reads."""
    imgs, labels = [], []
    lm = np.empty((64, 64), dtype=np.int64)
    bg = len(CLASSES)
    for s in scenes:
        imgs.append(render_array(s, seed, label_map=lm))
        cells = lm.reshape(64 // patch, patch, 64 // patch, patch).transpose(0, 2, 1, 3).reshape(-1, patch * patch)
        onehot = np.stack([(cells == c).sum(1) for c in range(bg)], axis=1)       # [64 patches, 16]
        lab = onehot.argmax(1)
        lab[onehot.max(1) < patch * patch // 4] = bg
        labels.append(lab)
    return normalise(np.stack(imgs)), torch.from_numpy(np.stack(labels))


def vision_targets(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    """Per-quadrant class / colour / size / digit indices (last index = empty) and a 16-way presence vector."""
    n = len(scenes)
    cls = torch.full((n, 4), len(CLASSES), dtype=torch.long)
    col = torch.full((n, 4), len(COLORS), dtype=torch.long)
    size = torch.full((n, 4), len(SIZES), dtype=torch.long)
    digit = torch.full((n, 4), 10, dtype=torch.long)
    presence = torch.zeros(n, len(CLASSES))
    for i, s in enumerate(scenes):
        for o in s.objects:
            q = SLOTS.index(o.slot)
            cls[i, q] = CLASS_INDEX[o.cls]
            col[i, q] = COLORS.index(o.color)
            size[i, q] = SIZES.index(o.size)
            if o.cls in TEXT_CLASSES and o.text is not None:
                digit[i, q] = int(o.text)
            presence[i, CLASS_INDEX[o.cls]] = 1.0
    return {"cls": cls, "color": col, "size": size, "digit": digit, "presence": presence}


# ---------------------------------------------------------------- SFT conversations

@dataclass(frozen=True)
class Recipe:
    """How web-like the policy's training texts are (the knobs that make it hallucinate)."""
    # captions naming a theme-typical absent object. 0.5, not 0.2: at 0.2 the invented object only shows up in
    # sampled answers (greedy decoding follows the 80 % majority and stops), so the greedy descriptions the suites
    # score never hallucinated from the language prior — the co-occurrence hallucination alignment targets.
    caption_noise: float = 0.5
    n_existence: int = 10               # existence Q/A per image
    positive_share: float = 0.4         # of them about present objects; noisy "yes" labels bring "yes" to ~0.45
    cooccur_negative: float = 0.6       # share of negatives drawn from the scene's own theme (adversarial)
    noisy_yes: float = 0.15             # co-occurring negatives wrongly labelled "yes" (annotation noise)
    n_captions: int = 2                 # copies of the image's caption among its samples (descriptions are long)


def existence_turns(scene: Scene, rng: random.Random, recipe: Recipe) -> list[tuple[str, str]]:
    """n_existence existence Q/A: positive_share about present objects, the rest about absent ones (mostly of the
    scene's own theme, some of them wrongly labelled "yes": the annotation noise that makes the model hallucinate
    co-occurring objects, like POPE's adversarial split shows for real models)."""
    present = sorted(scene.classes)
    cooc = scene.cooccurring_absent()
    other = [c for c in scene.absent_classes() if c not in cooc]
    turns = []
    n_pos = round(recipe.n_existence * recipe.positive_share)
    for i in range(recipe.n_existence):
        if i < n_pos:
            turns.append((texts.pope_question(rng.choice(present)), "yes ."))
            continue
        if cooc and (rng.random() < recipe.cooccur_negative or not other):
            cls = rng.choice(cooc)
            answer = "yes ." if rng.random() < recipe.noisy_yes else "no ."
        else:
            cls, answer = rng.choice(other), "no ."
        turns.append((texts.pope_question(cls), answer))
    return turns


def other_turns(scene: Scene, rng: random.Random) -> list[tuple[str, str]]:
    """One attribute question, the count, a spatial relation and OCR where they apply."""
    obj = rng.choice(scene.objects)
    qas = [rng.choice([texts.color_qa, texts.size_qa, texts.position_qa])(obj), texts.count_qa(scene)]
    if len(scene.objects) >= 2:
        a, b = rng.sample(list(scene.objects), 2)
        qas.append(texts.spatial_qa(a, b, rng.choice(texts.RELATIONS)))
    qas += [texts.ocr_qa(o) for o in scene.objects if o.cls in TEXT_CLASSES and o.text is not None]
    return [(q.question, q.answer) for q in qas]


def sft_samples(scenes: list[Scene], rng: random.Random, recipe: Recipe) -> list[tuple[int, list]]:
    """Single-turn (image index, [(question, answer)]) samples: per image one (noisy) caption, the existence
    Q/A and the other questions. Single turns on purpose: in multi-turn packing, earlier answers ("what color is
    the cup") leak presence to later existence questions and the model learns that text shortcut instead of
    looking at the image."""
    out = []
    for i, s in enumerate(scenes):
        turns = [("describe this image .", texts.caption(s, rng, recipe.caption_noise))] * recipe.n_captions
        turns += existence_turns(s, rng, recipe) + other_turns(s, rng)
        out += [(i, [t]) for t in turns]
    return out


class Encoder:
    """Token ids of chat turns, identical to the chat template's rendering (checked in tests/test_zoo.py).

    Word-level tokenisation is context-free, so a conversation's ids are the concatenation of its pieces' ids:
    "user : <image> Q assistant :" (prompt, not supervised) then " A </s>" (supervised), and so on per turn.
    """

    def __init__(self, tokenizer, n_image_tokens: int):
        self.tok = tokenizer
        self.image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.n_image_tokens = n_image_tokens

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, question: str, with_image: bool = True) -> list[int]:
        ids = self.ids("user :")
        if with_image:
            ids += [self.image_id] * self.n_image_tokens
        return ids + self.ids(f"{question} assistant :")

    def encode(self, turns: list[tuple[str, str]], with_image: bool = True) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        labels: list[int] = []
        for i, (q, a) in enumerate(turns):
            p = self.prompt_ids(q, with_image and i == 0)
            ans = self.ids(f"{a} {EOS}")
            ids += p + ans
            labels += [IGNORE] * len(p) + ans
        return ids, labels


def pad_batch(seqs: list[list[int]], pad: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if left:
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
        else:
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
    return ids, mask
