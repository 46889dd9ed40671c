"""Micro-world ground truth for the baselines that need it (`oracle`, `hallucination-injection`).

Given the scene that was actually drawn in a kept image (synthesis items carry it as `scene`) and the
instruction question asked about it:
* `qa_for(scene, question)` finds the world's own question/answer (with its label) by regenerating every
  question the world can ask about that scene — no parsing of question text;
* `gt_score(scene, qa, response)` is the ground-truth judge: correct content minus hallucinated objects and
  wrong attributes, with malformed/empty answers penalised (docs/micro-world.md: a scorer blind to repetition teaches the policy to repeat);
* `inject(scene, qa, rng, object_share)` is POVID/HALVA-style hallucination injection: the correct answer with
  a co-occurring absent object added, or one attribute made wrong.
"""

from __future__ import annotations

import random

from harness.errors import HarnessError
from harness.judges.rule import assess
from harness.world.scene import CLASSES, COLORS, SIZES, SLOT_NAMES, TEXT_CLASSES, Obj, Scene
from harness.world.texts import (NUMBER_WORDS, QA, RELATIONS, color_qa, count_qa, describe_objects, describe_qa,
                                 existence_qa, is_well_formed, mentioned_objects, ocr_qa, position_qa, size_qa,
                                 spatial_qa, tokenize)

# gt_score weights: one point per correct object / right short answer, a hallucination costs two (so a
# description that adds one invented object to two true ones scores 0), a wrong attribute of a true object
# (colour, size, slot) one (it cancels that object's point), a malformed answer three, an empty one two more.
HALLUCINATION_COST = 2.0
ATTRIBUTE_COST = 1.0
MALFORMED_COST = 3.0
EMPTY_COST = 2.0


def all_qas(scene: Scene) -> list[QA]:
    """Every question the micro world can ask about `scene` (harness.world.texts generators)."""
    qas = [describe_qa(scene), count_qa(scene)] + [existence_qa(scene, c) for c in CLASSES]
    for o in scene.objects:
        qas += [color_qa(o), size_qa(o), position_qa(o)]
        if o.cls in TEXT_CLASSES and o.text is not None:
            qas.append(ocr_qa(o))
    for a in scene.objects:
        for b in scene.objects:
            if a is not b:
                qas += [spatial_qa(a, b, r) for r in RELATIONS]
    return qas


def qa_for(scene: Scene | dict, question: str) -> QA:
    scene = Scene.from_dict(scene) if isinstance(scene, dict) else scene
    for qa in all_qas(scene):
        if qa.question == question:
            return qa
    raise HarnessError(f"question {question!r} is not one the micro world asks about scene {scene.key()!r} "
                       "(ground-truth methods need the micro world's questions)")


def attribute_errors(scene: Scene, text: str) -> int:
    """Wrong attributes given to objects that are there, read from the world's phrase shape
    "a {size} {colour} {class} on the {slot}": a colour/size word just before a true object that is not its
    colour/size, or a slot right after it that is not its slot."""
    toks, errors = tokenize(text), 0
    slots = {tuple(name.split()) for name in SLOT_NAMES.values()}
    for i, tok in enumerate(toks):
        obj = scene.get(tok)
        if obj is None:
            continue
        before = toks[max(0, i - 2):i]
        errors += any(w in COLORS and w != obj.color for w in before)
        errors += any(w in SIZES and w != obj.size for w in before)
        if toks[i + 1:i + 3] == ["on", "the"] and tuple(toks[i + 3:i + 5]) in slots:
            errors += tuple(toks[i + 3:i + 5]) != tuple(obj.slot_name.split())
    return errors


def gt_score(scene: Scene, qa: QA, response: str) -> float:
    """describe: #true objects mentioned - 2 x #absent objects mentioned - #wrong attributes of true objects;
    short answers: 1 if right, -2 if it contradicts the scene (decided by the rule judge that scores the
    evaluation); then -3 if malformed and -2 more if empty."""
    text = response or ""
    if qa.kind == "describe":
        mentioned = set(mentioned_objects(text))
        score = (len(mentioned & scene.classes) - HALLUCINATION_COST * len(mentioned - scene.classes)
                 - ATTRIBUTE_COST * attribute_errors(scene, text))
    else:
        info, hallucinated, _, _ = assess({"scene": scene.to_dict(), "meta": {"kind": qa.kind, **qa.meta},
                                           "prediction": text, "target": qa.answer})
        score = (1.0 if info == "very" else 0.0) - (HALLUCINATION_COST if hallucinated else 0.0)
    if not is_well_formed(text):
        score -= MALFORMED_COST
    if not text.strip():
        score -= EMPTY_COST
    return float(score)


def _other(values, current, rng: random.Random):
    return rng.choice([v for v in values if v != current])


def inject(scene: Scene, qa: QA, rng: random.Random, object_share: float = 0.5) -> tuple[str, dict]:
    """The correct answer made wrong in one place -> (rejected text, what was injected)."""
    if qa.kind == "describe":
        objects = list(scene.objects)
        absent = scene.cooccurring_absent() or scene.absent_classes()
        if absent and (rng.random() < object_share or not objects):
            # POVID-style: a theme-typical object that is not there, in a free slot when there is one
            used = {o.slot for o in objects}
            free = [s for s in SLOT_NAMES if s not in used] or list(SLOT_NAMES)
            cls = rng.choice(absent)
            fake = Obj(cls, rng.choice(COLORS), rng.choice(SIZES), rng.choice(free))
            objects.insert(rng.randrange(len(objects) + 1), fake)
            return describe_objects(objects), {"type": "object", "object": cls}
        i = rng.randrange(len(objects))
        o = objects[i]
        if rng.random() < 0.5:
            objects[i] = Obj(o.cls, _other(COLORS, o.color, rng), o.size, o.slot, o.text)
            return describe_objects(objects), {"type": "attribute", "object": o.cls, "attribute": "color"}
        objects[i] = Obj(o.cls, o.color, _other(SIZES, o.size, rng), o.slot, o.text)
        return describe_objects(objects), {"type": "attribute", "object": o.cls, "attribute": "size"}
    if qa.kind in ("existence", "spatial"):
        wrong = "no ." if qa.meta["label"] == "yes" else "yes ."
        # "yes" to an absent object is an object hallucination; "no" to a present one denies what is there
        kind = "attribute" if qa.kind == "spatial" else ("object" if qa.meta["label"] == "no" else "denial")
        return wrong, {"type": kind, "object": qa.meta.get("object")}
    if qa.kind == "color":
        return f"{_other(COLORS, qa.answer.split()[0], rng)} .", {"type": "attribute", "attribute": "color"}
    if qa.kind == "size":
        return f"{_other(SIZES, qa.answer.split()[0], rng)} .", {"type": "attribute", "attribute": "size"}
    if qa.kind == "count":
        n = qa.meta["count"]
        return f"{NUMBER_WORDS[n + 1 if n < 4 else n - 1]} .", {"type": "attribute", "attribute": "count"}
    if qa.kind == "position":
        want = qa.answer.removeprefix("on the ").removesuffix(" .")
        return f"on the {_other(list(SLOT_NAMES.values()), want, rng)} .", {"type": "attribute", "attribute": "position"}
    if qa.kind == "ocr":
        return f"{_other([str(d) for d in range(10)], qa.answer.split()[0], rng)} .", {"type": "attribute",
                                                                                     "attribute": "digit"}
    raise HarnessError(f"no hallucination injection for question kind {qa.kind!r}")
