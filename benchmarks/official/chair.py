"""CHAIR (Rohrbach et al. 2018; LisaAnne/Hallucination, utils/chair.py) as the original script computes it, for
Object HalBench and any COCO caption set. docs/benchmarks.md § CHAIR.

A caption is lower-cased, tokenised with NLTK's `word_tokenize`, and every token singularised the way
`pattern.en.singularize` does it (data/chair_singular.txt; its quirks included: "bus" -> "bu", "glass" -> "glas").
Adjacent tokens that form a two-word object are joined first ("hot dog" is not a dog, "teddy bear" not a bear);
"baby"/"adult" + an animal and "passenger" + jet/train are the animal or vehicle (not a person); "bow tie" is a
tie; a caption that names a toilet and a seat loses the seat (a toilet seat is no chair). Every remaining token in
the synonym list (data/chair_synonyms.txt, the script's data/synonyms.txt verbatim) is mapped onto its COCO class.
A mention is hallucinated when its class is not among the image's ground-truth classes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

TWO_WORD_OBJECTS = (
    "motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal", "stop light",
    "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball", "baseball bat", "baseball glove",
    "tennis racket", "wine glass", "hot dog", "cell phone", "mobile phone", "teddy bear", "hair drier",
    "potted plant", "bow tie", "laptop computer", "stove top oven", "home plate", "train track")
# qualifiers that would otherwise read as a person ("baby bird" is a bird, "passenger jet" a jet)
ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub")
VEHICLES = ("jet", "train")


def _two_word_table() -> dict[str, str]:
    table = {w: w for w in TWO_WORD_OBJECTS}
    for animal in ANIMALS:
        table[f"baby {animal}"] = table[f"adult {animal}"] = animal
    for vehicle in VEHICLES:
        table[f"passenger {vehicle}"] = vehicle
    # singularised spellings: a bow tie is a tie, and pattern turns "glass" into "glas"
    table.update({"bow tie": "tie", "toilet seat": "toilet", "wine glas": "wine glass"})
    return table


@lru_cache(maxsize=1)
def vocabulary() -> tuple[frozenset, dict[str, str]]:
    """(every synonym, synonym -> COCO class) read from the script's own synonyms.txt, split as it splits it
    (so its few entries with a leading space never match, as in the original)."""
    words, to_class = set(), {}
    for line in (DATA / "chair_synonyms.txt").read_text().splitlines():
        synonyms = line.strip().split(", ")
        words.update(synonyms)
        for s in synonyms:
            to_class[s] = synonyms[0]
    return frozenset(words), to_class


@lru_cache(maxsize=1)
def _singulars() -> dict[str, str]:
    table = {}
    for line in (DATA / "chair_singular.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            word, singular = line.split("\t")
            table[word] = singular
    return table


def singularize(word: str) -> str:
    return _singulars().get(word, word)


def _join_two_word_objects(words: list[str]) -> list[str]:
    table, out, i = _two_word_table(), [], 0
    while i < len(words):
        pair = " ".join(words[i:i + 2])
        if pair in table:
            out.append(table[pair])
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def caption_objects(caption: str, tokenize) -> tuple[list[str], list[str]]:
    """(object words as written after singularising, their COCO classes), in order, with repeats.
    `tokenize`: NLTK's word_tokenize (benchmarks.official.nlp.word_tokenize)."""
    words = _join_two_word_objects([singularize(w) for w in tokenize(caption.lower())])
    if "toilet" in words and "seat" in words:
        words = [w for w in words if w != "seat"]
    synonyms, to_class = vocabulary()
    words = [w for w in words if w in synonyms]
    return words, [to_class[w] for w in words]


def truth_classes(names) -> list[str]:
    """Ground-truth object names (COCO categories or caption words) -> their classes, as the script maps them."""
    _, to_class = vocabulary()
    return list(dict.fromkeys(to_class.get(n, n) for n in names))      # in the given order, once each


def score_caption(caption: str, truth: list[str], tokenize, reference_captions=()) -> dict:
    """The row fields benchmarks.metrics' CHAIR metrics read: `mentioned` (classes with repeats), `truth`.
    The image's ground truth is, as in chair.py, its annotated objects (`truth`: COCO category names from the
    segmentations) plus every class its reference captions mention (`reference_captions`, COCO's human captions)."""
    words, classes = caption_objects(caption or "", tokenize)
    gt = truth_classes(list(truth) + [c for ref in reference_captions for c in caption_objects(ref, tokenize)[1]])
    return {"mentioned": classes, "mentioned_words": words, "truth": gt,
            "hallucinated_objects": [c for c in classes if c not in gt]}
