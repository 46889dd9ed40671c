"""The micro world's ground-truth judge: applies the MMHal 0-6 rubric and MM-Vet 0-1 correctness from the scene.

Deterministic. What the official GPT-4 judges decide from the image's labels and a reference answer, this rule
decides from the typed scene itself:
* a *hallucination* is a claim about the image that the scene contradicts: a wrong colour/size/count/position/
  digit/yes-no, an attribute given to an absent object, or a mention of an object that is not there (a denied
  object, "there is no dog .", is not a mention);
* *informativeness* is how much of the asked-for content is right: the correct short answer = very informative;
  for descriptions, the share of the scene's objects described correctly (all = very, at least half = somewhat);
  in descriptions every claimed object is checked (class, size, colour, slot), not only the class.
MMHal rating (docs/benchmarks.md): no hallucination -> 6 very informative and well-formed (the "good reasoning" tier),
5 very informative, 4 somewhat, 3 not informative; with hallucination -> 2 very, 1 somewhat, 0 not.
MM-Vet correctness: 1/0 for short answers, F1 of true claims vs the scene's objects for descriptions (partial
credit, as the GPT grader gives for partially right open answers).
"""

from __future__ import annotations

from harness.judges import Judge, Judgement
from harness.world.scene import COLORS, SIZES, SLOT_NAMES, Scene
from harness.world.texts import (
    NUMBER_WORDS,
    is_well_formed,
    mentioned_objects,
    parse_number,
    parse_yes_no,
    tokenize,
)

_SLOT_PHRASES = {name: tuple(name.split()) for name in SLOT_NAMES.values()}
_NEGATIONS = {"no", "not", "nothing", "none"}


def _mentioned_unnegated(text: str) -> list[str]:
    """Objects mentioned outside a negation ("there is no dog" does not claim a dog)."""
    toks = tokenize(text)
    out = []
    for i, t in enumerate(toks):
        objs = mentioned_objects(t)
        if objs and not any(w in _NEGATIONS for w in toks[max(0, i - 3):i]):
            out.extend(objs)
    return out


def _slot_phrases(text: str) -> set[str]:
    toks = tokenize(text)
    pairs = {(toks[i], toks[i + 1]) for i in range(len(toks) - 1)}
    return {name for name, ph in _SLOT_PHRASES.items() if ph in pairs}


def description_claims(text: str, scene: Scene) -> tuple[int, int, set[str]]:
    """Check every object a description claims against the scene -> (true claims, false claims, objects
    described correctly). A claim is an object word with the size / colour words just before it and an
    "on the <slot>" just after; it is false when the class is absent, when a stated size, colour or slot
    contradicts the scene's object, or when the class is claimed again (a scene holds one of each class)."""
    toks = tokenize(text)
    true_claims = false_claims = 0
    correct: set[str] = set()
    claimed: set[str] = set()
    for i, t in enumerate(toks):
        objs = mentioned_objects(t)
        if not objs or any(w in _NEGATIONS for w in toks[max(0, i - 3):i]):
            continue
        cls = objs[0]
        before = set(toks[max(0, i - 2):i])
        size, color = before & set(SIZES), before & set(COLORS)
        slot = None
        if toks[i + 1:i + 3] == ["on", "the"] and len(toks) > i + 4:
            slot = f"{toks[i + 3]} {toks[i + 4]}"
        obj = scene.get(cls)
        ok = (obj is not None and cls not in claimed and (not size or size == {obj.size})
              and (not color or color == {obj.color}) and (slot is None or slot == obj.slot_name))
        claimed.add(cls)
        if ok:
            true_claims += 1
            correct.add(cls)
        else:
            false_claims += 1
    return true_claims, false_claims, correct


def _short_answer(kind: str, meta: dict, scene: Scene, target: str, pred: str) -> str:
    """'right' | 'wrong' (a contradicted claim) | 'none' (no answer to the question)."""
    toks = set(tokenize(pred))
    if kind in ("color", "size"):
        vocab = COLORS if kind == "color" else SIZES
        want = set(tokenize(target)) & set(vocab)
        said = toks & set(vocab)
        if not said:
            return "none"
        return "right" if said == want else "wrong"
    if kind == "count":
        n = parse_number(pred)
        return "none" if n is None else ("right" if n == meta.get("count", len(scene.objects)) else "wrong")
    if kind == "position":
        said = _slot_phrases(pred)
        want = _slot_phrases(target)
        return "none" if not said else ("right" if said == want else "wrong")
    if kind in ("existence", "spatial"):
        p = parse_yes_no(pred)
        return "none" if p is None else ("right" if p == meta["label"] else "wrong")
    if kind == "ocr":
        digits = [t for t in tokenize(pred) if t.isdigit()] or \
                 [str(NUMBER_WORDS.index(t)) for t in tokenize(pred) if t in NUMBER_WORDS]
        want = [t for t in tokenize(target) if t.isdigit()]
        return "none" if not digits else ("right" if digits[:1] == want[:1] else "wrong")
    if kind == "adversarial":
        if toks & _NEGATIONS:
            return "right"
        if toks & (set(COLORS) | set(SIZES)):
            return "wrong"           # an attribute of an object that is not there
        return "none"
    raise ValueError(f"unknown question kind {kind!r}")


def assess(row: dict) -> tuple[str, bool, bool, str]:
    """-> (informativeness 'very'|'somewhat'|'not', hallucinated, well_formed, reason)."""
    scene = Scene.from_dict(row["scene"])
    meta = row.get("meta") or {}
    kind = meta.get("kind") or row.get("qtype")
    pred = row.get("prediction") or ""
    truth = scene.classes
    extra = {o for o in _mentioned_unnegated(pred) if o not in truth}
    if kind == "adversarial" and _short_answer(kind, meta, scene, row["target"], pred) == "right":
        extra.discard(meta.get("object"))      # "no, there is no dog": naming the denied object is no claim
    if kind == "describe":
        # informativeness = share of the scene's objects described correctly (class, size, colour, slot);
        # any false claim (absent object, wrong attribute or place, a second copy) is a hallucination
        _, n_false, correct = description_claims(pred, scene)
        rec = len(correct) / len(truth) if truth else 1.0
        info = "very" if rec >= 1.0 else "somewhat" if rec >= 0.5 else "not"
        return info, n_false > 0, is_well_formed(pred), f"described {rec:.2f} of the objects, {n_false} false claims"
    verdict = _short_answer(kind, meta, scene, row["target"], pred)
    info = "very" if verdict == "right" else "not"
    why = f"{kind}: {verdict}, absent mentioned {sorted(extra)}"
    return info, verdict == "wrong" or bool(extra), is_well_formed(pred), why


def mmhal_rating(info: str, hallucinated: bool, well_formed: bool) -> int:
    if hallucinated:
        return {"very": 2, "somewhat": 1, "not": 0}[info]
    if info == "very":
        return 6 if well_formed else 5
    return {"somewhat": 4, "not": 3}[info]


def mmvet_correctness(row: dict) -> float:
    scene = Scene.from_dict(row["scene"])
    meta = row.get("meta") or {}
    kind = meta.get("kind") or row.get("qtype")
    pred = row.get("prediction") or ""
    if kind == "describe":     # partial credit: F1 of true claims vs the scene's objects
        n_true, n_false, correct = description_claims(pred, scene)
        if n_true == 0:
            return 0.0
        p, r = n_true / (n_true + n_false), len(correct) / len(scene.classes)
        return 2 * p * r / (p + r)
    return 1.0 if _short_answer(kind, meta, scene, row["target"], pred) == "right" else 0.0


class RuleJudge(Judge):
    name = "rule"
    model = "micro-world ground truth"
    version = "2"     # 2: descriptions checked claim by claim (attributes and slots, not only classes)

    def __init__(self, **_ignored):
        pass

    def judge(self, task: str, row: dict) -> Judgement:
        try:
            if task == "mmhal":
                info, hall, wf, why = assess(row)
                return Judgement(float(mmhal_rating(info, hall, wf)), raw=why)
            return Judgement(mmvet_correctness(row), raw="rule")
        except (KeyError, ValueError, TypeError) as e:
            return Judgement(None, error=f"rule judge cannot score item {row.get('id')}: {e}")
