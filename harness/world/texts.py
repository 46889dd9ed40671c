"""Word-level texts of the micro world: descriptions, noisy captions, questions, parsers, vocabulary.

Everything is lower-case with punctuation as separate tokens ("there is a small red cup on the top left ."), so a
word-level tokenizer covers every string the world produces. Parsers are lenient the way benchmark parsers are
(POPE reads "yes"/"no" from the first sentence).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from harness.world.scene import CLASSES, COLORS, SIZES, SLOT_NAMES, TEXT_CLASSES, THEMES, Obj, Scene

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DIGITS = tuple(str(i) for i in range(10))
RELATIONS = ("left of", "right of", "above", "below")
MAX_WELL_FORMED_TOKENS = 64


# ---------------------------------------------------------------- descriptions and captions

def object_phrase(obj: Obj, with_slot: bool = True) -> str:
    phrase = f"a {obj.size} {obj.color} {obj.cls}"
    return f"{phrase} on the {obj.slot_name}" if with_slot else phrase


def describe_objects(objects: list[Obj] | tuple[Obj, ...]) -> str:
    if not objects:
        return "there is nothing in the image ."
    return "there is " + " and ".join(object_phrase(o) for o in objects) + " ."


def describe(scene: Scene) -> str:
    """Ground-truth description: every object, its size, colour and slot, in slot order."""
    return describe_objects(scene.objects)


def caption(scene: Scene, rng: random.Random, noise: float) -> str:
    """A web-like caption: the truth, plus (with probability `noise`) a theme-typical object that is NOT there.

    The invented object gets a free slot when there is one, so the caption still reads like a plausible scene.
    """
    objects = list(scene.objects)
    absent = scene.cooccurring_absent()
    if absent and rng.random() < noise:
        used = {o.slot for o in objects}
        free = [s for s in SLOT_NAMES if s not in used] or list(SLOT_NAMES)
        fake = Obj(rng.choice(absent), rng.choice(COLORS), rng.choice(SIZES), rng.choice(free))
        objects.insert(rng.randrange(len(objects) + 1), fake)
    return describe_objects(objects)


# ---------------------------------------------------------------- questions

@dataclass(frozen=True)
class QA:
    kind: str            # existence | color | size | count | position | spatial | ocr | describe
    question: str
    answer: str
    meta: dict = field(default_factory=dict, hash=False, compare=False)


def pope_question(cls: str) -> str:
    return f"is there a {cls} in the image ?"


def existence_qa(scene: Scene, cls: str) -> QA:
    present = cls in scene.classes
    return QA("existence", pope_question(cls), "yes ." if present else "no .",
              {"object": cls, "label": "yes" if present else "no"})


def color_qa(obj: Obj) -> QA:
    return QA("color", f"what color is the {obj.cls} ?", f"{obj.color} .", {"object": obj.cls})


def size_qa(obj: Obj) -> QA:
    return QA("size", f"is the {obj.cls} small or big ?", f"{obj.size} .", {"object": obj.cls})


def count_qa(scene: Scene) -> QA:
    n = len(scene.objects)
    return QA("count", "how many objects are there ?", f"{NUMBER_WORDS[n]} .", {"count": n})


def position_qa(obj: Obj) -> QA:
    return QA("position", f"where is the {obj.cls} ?", f"on the {obj.slot_name} .", {"object": obj.cls})


def relation_holds(a: Obj, b: Obj, relation: str) -> bool:
    """Strict relations between slots: columns for left/right, rows for above/below."""
    (ax, ay), (bx, by) = a.slot, b.slot
    return {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[relation]


def spatial_qa(a: Obj, b: Obj, relation: str) -> QA:
    holds = relation_holds(a, b, relation)
    return QA("spatial", f"is the {a.cls} {relation} the {b.cls} ?", "yes ." if holds else "no .",
              {"objects": [a.cls, b.cls], "relation": relation, "label": "yes" if holds else "no"})


def ocr_qa(obj: Obj) -> QA:
    if obj.cls not in TEXT_CLASSES or obj.text is None:
        raise ValueError(f"{obj.cls} carries no text")
    return QA("ocr", f"what number is on the {obj.cls} ?", f"{obj.text} .", {"object": obj.cls})


def describe_qa(scene: Scene) -> QA:
    return QA("describe", "describe this image .", describe(scene), {"objects": sorted(scene.classes)})


def sample_questions(scene: Scene, rng: random.Random, n_existence: int = 4) -> list[QA]:
    """A mixed batch of questions about one scene: existence (half positive when possible), one attribute,
    count, position, a spatial relation when there are two objects, OCR when there is a sign."""
    qas: list[QA] = []
    present = sorted(scene.classes)
    absent = scene.absent_classes()
    for i in range(n_existence):
        cls = rng.choice(present) if (i % 2 == 0 or not absent) else rng.choice(absent)
        qas.append(existence_qa(scene, cls))
    obj = rng.choice(scene.objects)
    qas.append(rng.choice([color_qa, size_qa, position_qa])(obj))
    qas.append(count_qa(scene))
    if len(scene.objects) >= 2:
        a, b = rng.sample(list(scene.objects), 2)
        qas.append(spatial_qa(a, b, rng.choice(RELATIONS)))
    for o in scene.objects:
        if o.cls in TEXT_CLASSES and o.text is not None:
            qas.append(ocr_qa(o))
    return qas


# ---------------------------------------------------------------- parsing

_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_PLURALS = {c + ("es" if c.endswith(("s", "sh", "ch")) else "s"): c for c in CLASSES}
_CLASS_SET = frozenset(CLASSES)


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower())


def first_sentence(text: str) -> str:
    m = re.split(r"[.!?\n]", text.strip(), maxsplit=1)
    return m[0] if m else ""


def parse_yes_no(text: str) -> str | None:
    """'yes' / 'no' from the first sentence (first of yes/no/not wins); None when neither is there."""
    for tok in tokenize(first_sentence(text or "")):
        if tok == "yes":
            return "yes"
        if tok in ("no", "not"):
            return "no"
    return None


def mentioned_objects(text: str) -> list[str]:
    """Class names mentioned in `text`, in order, with repeats (plurals map to the class)."""
    out = []
    for tok in tokenize(text or ""):
        if tok in _CLASS_SET:
            out.append(tok)
        elif tok in _PLURALS:
            out.append(_PLURALS[tok])
    return out


def parse_number(text: str) -> int | None:
    for tok in tokenize(first_sentence(text or "")):
        if tok.isdigit():
            return int(tok)
        if tok in NUMBER_WORDS:
            return NUMBER_WORDS.index(tok)
    return None


def has_loop(tokens: list[str]) -> bool:
    """A token three times in a row: the repetition loop of a degenerating decoder (docs/micro-world.md)."""
    return any(tokens[i] == tokens[i + 1] == tokens[i + 2] for i in range(len(tokens) - 2))


# Words an answer cannot end on: "on the .", "there is a ." are answers cut off before their content.
FUNCTION_WORDS = frozenset({"a", "an", "the", "on", "of", "in", "with", "and", "to", "is", "there"})


_WORD_RE = re.compile(r"\w+")


def degeneration(text: str, world: str = "micro") -> str | None:
    """How an answer broke rather than erred (docs/micro-world.md: a prototype degenerated on 26 % of its outputs), or None:
    "empty"; "loop" (a token three times in a row); "unterminated" (no final "." or "?": generation ran out of
    tokens); "truncated" (the last word before the "." is a function word, as in "on the .": cut short where the
    content should be). The first that fits. A class named twice is not here: that is a misreading, which the
    stricter is_well_formed also rejects.
    world="real": free text may end without a period and an ellipsis is not a loop, so only "empty" and "loop"
    (a word three times in a row) apply."""
    if world == "real":
        words = _WORD_RE.findall((text or "").lower())
        return "empty" if not words else "loop" if has_loop(words) else None
    toks = tokenize(text or "")
    if not toks:
        return "empty"
    if has_loop(toks):
        return "loop"
    if toks[-1] not in (".", "?"):
        return "unterminated"
    if len(toks) >= 2 and toks[-2] in FUNCTION_WORDS:
        return "truncated"
    return None


def is_well_formed(text: str) -> bool:
    """Non-empty, bounded length, ends with '.', no token thrice in a row, no object mentioned twice."""
    toks = tokenize(text or "")
    if not toks or len(toks) > MAX_WELL_FORMED_TOKENS or toks[-1] != ".":
        return False
    if has_loop(toks):
        return False
    objs = mentioned_objects(text)
    return len(objs) == len(set(objs))


# ---------------------------------------------------------------- vocabulary

# Words of the chat template (harness.zoo.architectures) and of prompts (harness.world.generator).
CHAT_WORDS = ("user", "assistant", "system", ":")
PROMPT_WORDS = ("a", "photo", "of", "with", ",")


def _template_words() -> set[str]:
    words: set[str] = set()
    samples = [describe_objects([Obj(c, COLORS[0], SIZES[0], s) for c, s in zip(CLASSES[:1], SLOT_NAMES)])]
    for slot in SLOT_NAMES:
        samples.append(object_phrase(Obj(CLASSES[0], COLORS[0], SIZES[0], slot)))
    samples += ["there is nothing in the image .", pope_question("cup"), "what color is the cup ?",
                "is the cup small or big ?", "how many objects are there ?", "where is the cup ?",
                "on the top left .", "what number is on the sign ?", "describe this image .", "yes .", "no ."]
    samples += [f"is the cup {r} the fork ?" for r in RELATIONS]
    for s in samples:
        words.update(tokenize(s))
    return words


VOCAB: tuple[str, ...] = tuple(sorted(
    _template_words() | set(CLASSES) | set(COLORS) | set(SIZES) | set(NUMBER_WORDS) | set(DIGITS)
    | set(CHAT_WORDS) | set(PROMPT_WORDS) | set(THEMES) | {"and", "?", "."}))
