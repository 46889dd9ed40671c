"""AMBER (junyangwang0410/AMBER, inference.py) scored as its own script scores it. docs/benchmarks.md § AMBER.

Discriminative: the annotation's `type` names the dimension (`discriminative-hallucination` is existence,
`discriminative-attribute-{state,number,action}` attribute, `discriminative-relation` relation); the response
counts only when it is exactly "Yes" or "No" (the README asks for those strings); the positive class is "No".
Every count the script divides by starts at 0.001 (its data/metrics.txt), precision and recall are rounded to
0.1 before F1, and F1 adds 0.0001 to its denominator (0.001 for existence). Every printed value is rounded to
0.1; the metrics below return exactly the printed value.
"""

from __future__ import annotations

from benchmarks.metrics import SumMetric, _yes_no_features
from harness.errors import HarnessError

# official type -> (dimension, attribute sub-type or None)
DISCRIMINATIVE_TYPES = {
    "discriminative-hallucination": ("existence", None),
    "discriminative-attribute-state": ("attribute", "state"),
    "discriminative-attribute-number": ("attribute", "number"),
    "discriminative-attribute-action": ("attribute", "action"),
    "discriminative-relation": ("relation", None),
    "relation": ("relation", None),     # 689 of the 1,664 relation questions in annotations.json carry this type
}
# F1's extra denominator term, per reported group (the script uses 0.001 for existence only)
_F1_EPS = {"existence": 0.001}
_F1_EPS_DEFAULT = 0.0001
# each official counter starts at 0.001; a group pooling k counters (attribute = 3 sub-types) adds k x 0.001
_COUNTERS = {"attribute": 3}


def discriminative_type(kind: str) -> tuple[str, str | None]:
    """AMBER's annotation type -> (dimension, sub-type). An unknown type is bad input (HarnessError, exit 2),
    found before any answer is generated: the real task calls this when it builds the prompt."""
    try:
        return DISCRIMINATIVE_TYPES[kind]
    except KeyError:
        raise HarnessError(f"unknown AMBER discriminative type {kind!r}; the official types are "
                         f"{', '.join(DISCRIMINATIVE_TYPES)}") from None


def official_yes_no(response: str) -> str | None:
    """'yes' / 'no' only for the exact strings "Yes" / "No" (inference.py compares `response == 'Yes'`)."""
    return {"Yes": "yes", "No": "no"}.get(response)


def _rounded(x: float) -> float:
    return round(x, 1)


def _counts(c, group: str | None) -> tuple[float, float, float, float, float]:
    """(items, correct, answered No, answered No and truth No, truth No) with the script's 0.001 starts."""
    start = 0.001 * _COUNTERS.get(group or "", 1)
    n, tp, fp, fn, correct = c[0], c[1], c[2], c[3], c[4]
    return n + start, correct, tp + fp + start, tp, tp + fn + start


def _prf(c, group: str | None) -> tuple[float, float, float, float]:
    n, correct, ans_no, ans_no_right, truth_no = _counts(c, group)
    acc = _rounded(correct / n * 100)
    p = _rounded(ans_no_right / ans_no * 100)
    r = _rounded(ans_no_right / truth_no * 100)
    eps = _F1_EPS.get(group or "", _F1_EPS_DEFAULT)
    f1 = _rounded(2 * (p / 100) * (r / 100) / ((p / 100) + (r / 100) + eps) * 100)
    return acc, p, r, f1


_STAT_INDEX = {"accuracy": 0, "precision": 1, "recall": 2, "f1": 3}


def _in_group(r: dict, group: str | None) -> bool:
    if r.get("kind") != "discriminative":
        return False
    if group is None:
        return True
    return group in (r.get("dimension"), r.get("subtype"))


def discriminative(stat: str, group: str | None = None) -> SumMetric:
    """accuracy | precision | recall | f1 (x 100, rounded to 0.1 as printed) over all discriminative rows or one
    group: existence | attribute | relation | state | number | action."""
    base = _yes_no_features("no")
    zeros = (0,) * 7
    index = _STAT_INDEX[stat]
    return SumMetric(f"amber_d_{group or 'all'}_{stat}", lambda r: base(r) if _in_group(r, group) else zeros,
                     lambda c: _prf(c, group)[index], 7)


# ---------------------------------------------------------------- generative (CHAIR, Cover, Hal, Cog)

class GenerativeScorer:
    """inference.py's generative pass for one response -> per-item counts (summed by the metrics below).

    `vocabulary`: relation.json ({object: [associated words]}); `safe_words`: safe_words.txt; `nouns(text)`:
    the noun extractor (NLTK tokenise + POS tag + WordNet lemmatise, benchmarks.official.nlp); `similar(a, b)`:
    the near-synonym test (spaCy similarity > threshold). Both are injected so a missing resource is refused
    where it is loaded, never replaced."""

    def __init__(self, association: dict[str, list[str]], safe_words, nouns, similar):
        self.association = association
        self.vocabulary = set(association) | {w for words in association.values() for w in words}
        self.global_safe = set(safe_words)
        self.nouns, self.similar = nouns, similar

    def _candidates(self, objects: list[str]) -> list[tuple[str, int]]:
        """(word, index of the annotated object it stands for): associated words first, then the objects
        themselves, in the script's order (its first match wins)."""
        out = [(w, i) for i, obj in enumerate(objects) for w in self.association[obj]]
        return out + [(obj, i) for i, obj in enumerate(objects)]

    def _first_match(self, noun: str, candidates, by_similarity: bool) -> int | None:
        for word, i in candidates:
            if (self.similar(noun, word) if by_similarity else noun == word):
                return i
        return None

    def score(self, response: str, truth: list[str], hallu: list[str]) -> dict:
        nouns = [n for n in self.nouns(response) if n in self.vocabulary]
        safe, risky = self._candidates(truth), self._candidates(hallu)
        covered, hallu_hit, hallucinated = set(), set(), []
        for noun in nouns:
            if noun in self.global_safe:
                continue
            i = self._first_match(noun, safe, False)
            if i is not None:
                covered.add(i)
                continue
            for by_similarity in (False, True):     # an exact hit, then the first similar word
                i = self._first_match(noun, risky, by_similarity)
                if i is not None:
                    hallu_hit.add(i)
            i = self._first_match(noun, safe, True)
            if i is not None:
                covered.add(i)
                continue
            hallucinated.append(noun)
        return {"objects": nouns, "hallucinated_objects": hallucinated,
                "truth_covered": sorted(truth[i] for i in covered), "hallu_covered": sorted(hallu[i] for i in hallu_hit),
                "n_truth": len(truth), "n_hallu": len(hallu)}


def _generative_features(r: dict) -> tuple:
    if r.get("kind", "generative") != "generative":
        return (0,) * 8
    hall = len(r["hallucinated_objects"])
    return (1, hall, len(r["objects"]), len(r["truth_covered"]), r["n_truth"], len(r["hallu_covered"]),
            r["n_hallu"], hall == 0)


_GENERATIVE = {   # each denominator starts at 0.001 as in the script's metrics.txt
    "chair": lambda c: _rounded(c[1] / (c[2] + 0.001) * 100),
    "cover": lambda c: _rounded(c[3] / (c[4] + 0.001) * 100),
    "cog": lambda c: _rounded(c[5] / (c[6] + 0.001) * 100),
    "hal": lambda c: _rounded(100 - c[7] / (c[0] + 0.001) * 100),
}


def generative(stat: str) -> SumMetric:
    """chair | cover | hal | cog, x 100 and rounded to 0.1 as printed by inference.py."""
    return SumMetric(f"amber_{stat}_official", _generative_features, _GENERATIVE[stat], 8)


def _score_features(r: dict) -> tuple:
    disc = _yes_no_features("no")(r) if r.get("kind") == "discriminative" else (0,) * 7
    return (1,) + _generative_features(r) + tuple(disc)


def _amber_score(c) -> float:
    gen, disc = c[1:9], c[9:16]
    if gen[0] == 0 or disc[0] == 0:
        return float("nan")
    return ((100 - _GENERATIVE["chair"](gen)) + _prf(disc, None)[3]) / 2


# AMBER score = ((100 - CHAIR) + F1) / 2 from the printed CHAIR and discriminative F1
amber_score = SumMetric("amber_score_official", _score_features, _amber_score, 16)
