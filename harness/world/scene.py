"""Typed scenes: the ground truth every micro-world judge and metric reads.

16 classes in 4 themes whose objects co-occur strongly (like COCO's fork and dining table), 6 colours,
2 sizes, 4 slots (quadrants). A scene's split (train / eval) is a pure function of its content, so
evaluation scenes are disjoint from training scenes by construction, whatever seed drew them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

THEMES: dict[str, tuple[str, ...]] = {
    "kitchen": ("cup", "fork", "plate", "bottle"),
    "street": ("car", "bus", "sign", "bike"),
    "park": ("tree", "dog", "ball", "bench"),
    "office": ("book", "laptop", "lamp", "chair"),
}
CLASSES: tuple[str, ...] = tuple(c for objs in THEMES.values() for c in objs)
THEME_OF: dict[str, str] = {c: t for t, objs in THEMES.items() for c in objs}
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES: tuple[str, ...] = ("small", "big")
# Slots are quadrants: (column, row) with column 0 = left, row 0 = top.
SLOTS: tuple[tuple[int, int], ...] = ((0, 0), (1, 0), (0, 1), (1, 1))
SLOT_NAMES: dict[tuple[int, int], str] = {(0, 0): "top left", (1, 0): "top right",
                                          (0, 1): "bottom left", (1, 1): "bottom right"}
TEXT_CLASSES: frozenset[str] = frozenset({"sign"})   # objects that carry a rendered digit (OCR questions)
IN_THEME_PROB = 0.85     # an object is drawn from the scene's theme with this probability
N_OBJECTS_WEIGHTS = {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.2}
EVAL_FRACTION_MOD = 5    # scenes whose content hash % 5 == 0 are evaluation scenes (20 %)


@dataclass(frozen=True, order=True)
class Obj:
    cls: str
    color: str
    size: str
    slot: tuple[int, int]
    text: str | None = None      # a digit on TEXT_CLASSES objects

    @property
    def slot_name(self) -> str:
        return SLOT_NAMES[self.slot]


@dataclass(frozen=True)
class Scene:
    theme: str
    objects: tuple[Obj, ...]     # sorted by slot; classes are unique within a scene

    @property
    def classes(self) -> frozenset[str]:
        return frozenset(o.cls for o in self.objects)

    def get(self, cls: str) -> Obj | None:
        return next((o for o in self.objects if o.cls == cls), None)

    def key(self) -> str:
        """Canonical content string: the scene's identity for splitting and hashing."""
        objs = ";".join(f"{o.cls},{o.color},{o.size},{o.slot[0]}{o.slot[1]},{o.text or ''}" for o in self.objects)
        return f"{self.theme}|{objs}"

    @property
    def uid(self) -> str:
        return hashlib.sha256(self.key().encode()).hexdigest()[:12]

    @property
    def split(self) -> str:
        return "eval" if int(self.uid, 16) % EVAL_FRACTION_MOD == 0 else "train"

    def absent_classes(self) -> list[str]:
        return [c for c in CLASSES if c not in self.classes]

    def cooccurring_absent(self) -> list[str]:
        """Absent classes of the scene's theme: what a prior-driven model hallucinates (adversarial)."""
        return [c for c in THEMES[self.theme] if c not in self.classes]

    def to_dict(self) -> dict:
        return {"theme": self.theme, "objects": [
            {"cls": o.cls, "color": o.color, "size": o.size, "slot": list(o.slot), "text": o.text}
            for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        return make_scene(d["theme"], [Obj(o["cls"], o["color"], o["size"], tuple(o["slot"]), o.get("text"))
                                       for o in d["objects"]])


def make_scene(theme: str, objects: list[Obj]) -> Scene:
    return Scene(theme, tuple(sorted(objects, key=lambda o: (o.slot[1], o.slot[0]))))


def sample_scene(rng: random.Random, theme: str | None = None, n_objects: int | None = None) -> Scene:
    theme = theme or rng.choice(sorted(THEMES))
    n = n_objects or rng.choices(list(N_OBJECTS_WEIGHTS), weights=list(N_OBJECTS_WEIGHTS.values()))[0]
    slots = rng.sample(SLOTS, n)
    chosen: list[str] = []
    for _ in range(n):
        pool = THEMES[theme] if rng.random() < IN_THEME_PROB else [c for c in CLASSES if THEME_OF[c] != theme]
        pool = [c for c in pool if c not in chosen] or [c for c in CLASSES if c not in chosen]
        chosen.append(rng.choice(pool))
    objs = [Obj(c, rng.choice(COLORS), rng.choice(SIZES), s, str(rng.randrange(10)) if c in TEXT_CLASSES else None)
            for c, s in zip(chosen, slots)]
    return make_scene(theme, objs)


def sample_scenes(n: int, split: str, seed: int, theme: str | None = None) -> list[Scene]:
    """`n` distinct scenes of one split, deterministic in (n, split, seed)."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    rng = random.Random(f"scenes:{split}:{seed}")
    out: list[Scene] = []
    seen: set[str] = set()
    while len(out) < n:
        s = sample_scene(rng, theme)
        if s.split == split and s.key() not in seen:
            seen.add(s.key())
            out.append(s)
    return out
