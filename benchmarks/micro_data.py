"""Deterministic micro-world benchmark datasets, materialised as an lmms-eval include folder.

`build_micro_tasks()` copies the committed task YAMLs + utils.py (benchmarks/tasks/micro/) into a cache folder
and writes next to them `data/<task>.jsonl` and `images/<id>.png`, all from held-out (eval-split) scenes, so
`TaskManager(include_path=<folder>)` loads them offline (docs/design.md: `dataset_path: json` with data files
relative to the YAML). Nothing here is committed: the whole folder regenerates in a few seconds and is keyed by
`builder_key()`: DATA_VERSION, the committed task files, the source of the code that builds the data (this module
and harness.world: scenes, rendering, texts) and this module's constants (sizes such as CHAIR_IMAGES), so a change
to any of them rebuilds it instead of serving the data an older builder made.

Sizes are chosen so one tiny checkpoint runs all five micro suites in well under 90 s on 2 cores while a 95 %
bootstrap interval of a proportion stays around +-3-4 points (p = 0.5: 1.96 * sqrt(.25 / n) = 0.033 at n = 900).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from harness.io import cache_dir, stable_hash
from harness.world.texts import describe

DATA_VERSION = "2"
TASK_SRC = Path(__file__).resolve().parent / "tasks" / "micro"
POPE_IMAGES = 100              # x 3 splits x 6 questions = 1,800 POPE questions
POPE_SPLITS = ("random", "popular", "adversarial")
AMBER_IMAGES = 200             # 200 descriptions + 3 x 200 yes/no questions
MMHAL_PER_TYPE = 20            # 8 question types x 20 = 160
MMVET_PER_CAPABILITY = 40      # 5 capabilities x 40 = 200
CHAIR_IMAGES = 250
MMHAL_TYPES = ("attribute", "adversarial", "comparison", "counting", "relation", "environment", "holistic", "other")
MMVET_CAPABILITIES = ("recognition", "counting", "spatial", "ocr", "generation")
DESCRIBE_PROMPT = "describe this image ."


def task_files_hash() -> str:
    return stable_hash({p.name: p.read_text() for p in sorted(TASK_SRC.iterdir()) if p.suffix in (".yaml", ".py")})


BUILDER_MODULES = ("benchmarks.micro_data", "harness.world")    # the code that decides what the data holds


def builder_key() -> str:
    """Hash of everything that decides the micro data's content (see the module docstring)."""
    from harness.stages import code_version

    constants = {k: v for k, v in sorted(globals().items())
                 if k.isupper() and isinstance(v, (int, float, str, tuple))}
    return stable_hash({"version": DATA_VERSION, "tasks": task_files_hash(),
                        "code": code_version(*BUILDER_MODULES), "constants": constants})


def build_micro_tasks(root: str | Path | None = None, force: bool = False) -> Path:
    """-> the include folder holding every harness_micro_* task with its data (built once, then reused)."""
    root = Path(root) if root else cache_dir()
    folder = root / f"micro-tasks-v{DATA_VERSION}-{builder_key()}"
    if (folder / "COMPLETE").is_file() and not force:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".micro-tasks-", dir=root))
    try:
        for p in TASK_SRC.iterdir():
            if p.suffix in (".yaml", ".py"):
                shutil.copy2(p, tmp / p.name)
        _write_datasets(tmp)
        (tmp / "COMPLETE").write_text(DATA_VERSION + "\n")
        if (folder / "COMPLETE").is_file() and not force:
            return folder                # another process finished the same (deterministic) build first
        if folder.exists():
            shutil.rmtree(folder)        # an incomplete leftover
        try:
            os.replace(tmp, folder)      # atomic: a half-built folder is never visible under its final name
        except OSError:
            if not (folder / "COMPLETE").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ---------------------------------------------------------------- scene pools

def _eval_scenes(n: int, seed: str, min_objects: int = 1, need_sign: bool = False) -> list:
    from harness.world.scene import TEXT_CLASSES, sample_scene

    rng = random.Random(f"micro-bench:{seed}")
    out, seen = [], set()
    while len(out) < n:
        k = rng.randint(min_objects, 4)
        s = sample_scene(rng, n_objects=k)
        if s.split != "eval" or s.key() in seen:
            continue
        if need_sign and not any(o.cls in TEXT_CLASSES for o in s.objects):
            continue
        seen.add(s.key())
        out.append(s)
    return out


class _Writer:
    """Renders each scene once into images/ and collects JSONL documents per task."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.docs: dict[str, list[dict]] = {}

    def image(self, prefix: str, i: int, scene) -> str:
        from harness.world.render import render

        rel = f"images/{prefix}-{i:04d}.png"
        if not (self.folder / rel).exists():
            render(scene, seed=0).save(self.folder / rel)
        return rel

    def add(self, task: str, doc: dict) -> None:
        self.docs.setdefault(task, []).append(doc)

    def flush(self) -> None:
        for task, docs in self.docs.items():
            with open(self.folder / "data" / f"{task}.jsonl", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(d, sort_keys=True) + "\n" for d in docs)


def _write_datasets(folder: Path) -> None:
    w = _Writer(folder)
    _pope(w)
    _amber(w)
    _mmhal(w)
    _mmvet(w)
    _chair(w)
    w.flush()


# ---------------------------------------------------------------- POPE

def pope_negatives(scene, split: str, rng: random.Random, freq: Counter, cooc: dict[str, Counter],
                   k: int = 3) -> list[str]:
    """POPE's three negative-sampling rules over absent classes: random (uniform), popular (most frequent
    classes of the dataset), adversarial (classes that co-occur most with the scene's objects)."""
    absent = scene.absent_classes()
    if split == "random":
        return rng.sample(absent, k)
    if split == "popular":
        return sorted(absent, key=lambda c: (-freq[c], c))[:k]
    if split == "adversarial":
        score = Counter()
        for c in scene.classes:
            score.update(cooc[c])
        return sorted(absent, key=lambda c: (-score[c], -freq[c], c))[:k]
    raise ValueError(split)


def _pope(w: _Writer) -> None:
    from harness.world.scene import CLASSES
    from harness.world.texts import pope_question

    scenes = _eval_scenes(POPE_IMAGES, "pope", min_objects=3)
    freq = Counter(c for s in scenes for c in s.classes)
    cooc = {c: Counter() for c in CLASSES}
    for s in scenes:
        for a in s.classes:
            cooc[a].update(b for b in s.classes if b != a)
    for split in POPE_SPLITS:
        rng = random.Random(f"pope:{split}")
        for i, s in enumerate(scenes):
            img = w.image("pope", i, s)
            present = rng.sample(sorted(s.classes), 3)
            absent = pope_negatives(s, split, rng, freq, cooc)
            for j, (cls, label) in enumerate([(c, "yes") for c in present] + [(c, "no") for c in absent]):
                w.add("pope", {"id": f"{split}-{i:04d}-{j}", "image": img, "image_id": f"pope-{i:04d}",
                               "question": pope_question(cls), "target": label, "label": label,
                               "split": split, "object": cls})


# ---------------------------------------------------------------- AMBER

def _amber(w: _Writer) -> None:
    from harness.world.scene import COLORS, SIZES
    from harness.world.texts import RELATIONS, pope_question, relation_holds

    scenes = _eval_scenes(AMBER_IMAGES, "amber", min_objects=2)
    rng = random.Random("amber")
    for i, s in enumerate(scenes):
        img = w.image("amber", i, s)
        w.add("amber_g", {"id": f"g-{i:04d}", "image": img, "image_id": f"amber-{i:04d}", "kind": "generative",
                          "question": DESCRIBE_PROMPT, "target": describe(s),
                          "truth": json.dumps(sorted(s.classes)), "hallu": json.dumps(sorted(s.cooccurring_absent()))})
        # existence: alternate present / absent (absent drawn from the theme, the hard negatives AMBER annotates)
        if i % 2 == 0:
            cls, label = rng.choice(sorted(s.classes)), "yes"
        else:
            cls, label = rng.choice(s.cooccurring_absent() or s.absent_classes()), "no"
        questions = [("existence", pope_question(cls), label)]
        # attribute: the true colour or size half the time, a wrong one otherwise
        o = rng.choice(s.objects)
        if rng.random() < 0.5:
            value = o.color if i % 2 == 0 else rng.choice([c for c in COLORS if c != o.color])
        else:
            value = o.size if i % 2 == 0 else next(z for z in SIZES if z != o.size)
        # phrased like AMBER's "Is there a red car in this image?" (the existence template the policy reads)
        questions.append(("attribute", f"is there a {value} {o.cls} in the image ?",
                          "yes" if i % 2 == 0 else "no"))
        a, b = rng.sample(list(s.objects), 2)
        rel = rng.choice(RELATIONS)
        questions.append(("relation", f"is the {a.cls} {rel} the {b.cls} ?",
                          "yes" if relation_holds(a, b, rel) else "no"))
        for dim, q, label in questions:
            w.add("amber_d", {"id": f"d-{dim}-{i:04d}", "image": img, "image_id": f"amber-{i:04d}",
                              "kind": "discriminative", "dimension": dim, "question": q, "target": label,
                              "label": label})


# ---------------------------------------------------------------- MMHal (8 question types)

def mmhal_item(s, qtype: str, rng: random.Random) -> tuple[str, str, dict]:
    """(question, reference answer, meta) of one MMHal-style question about scene `s` (words of the world's
    vocabulary only, so the word-level policy can read them)."""
    from harness.world import texts

    o = rng.choice(s.objects)
    if qtype == "attribute":
        qa = texts.color_qa(o)
    elif qtype == "adversarial":       # asks about an absent, theme-typical object: the right answer denies it
        cls = rng.choice(s.cooccurring_absent() or s.absent_classes())
        return f"what color is the {cls} ?", f"there is no {cls} .", {"kind": "adversarial", "object": cls}
    elif qtype == "comparison":
        qa = texts.size_qa(o)
    elif qtype == "counting":
        qa = texts.count_qa(s)
    elif qtype == "relation":
        if len(s.objects) >= 2:
            a, b = rng.sample(list(s.objects), 2)
            qa = texts.spatial_qa(a, b, rng.choice(texts.RELATIONS))
        else:
            qa = texts.position_qa(o)
    elif qtype == "environment":
        qa = texts.position_qa(o)
    elif qtype == "holistic":
        qa = texts.describe_qa(s)
    else:  # other: OCR when there is a sign, else existence of a present object
        sign = next((x for x in s.objects if x.text is not None), None)
        qa = texts.ocr_qa(sign) if sign else texts.existence_qa(s, o.cls)
    return qa.question, qa.answer, {"kind": qa.kind, **qa.meta}


def _mmhal(w: _Writer) -> None:
    scenes = _eval_scenes(len(MMHAL_TYPES) * MMHAL_PER_TYPE, "mmhal")
    rng = random.Random("mmhal")
    for i, s in enumerate(scenes):
        qtype = MMHAL_TYPES[i % len(MMHAL_TYPES)]     # MMHal: question type = index mod 8
        q, ref, meta = mmhal_item(s, qtype, rng)
        w.add("mmhal", {"id": f"mmhal-{i:04d}", "image": w.image("mmhal", i, s), "image_id": f"mmhal-{i:04d}",
                        "question": q, "target": ref, "qtype": qtype, "scene": json.dumps(s.to_dict()),
                        "meta": json.dumps(meta), "capabilities": "[]"})


# ---------------------------------------------------------------- MM-Vet (capabilities)

def _mmvet(w: _Writer) -> None:
    from harness.world import texts

    rng = random.Random("mmvet")
    scenes = _eval_scenes(len(MMVET_CAPABILITIES) * MMVET_PER_CAPABILITY, "mmvet")
    signs = iter(_eval_scenes(MMVET_PER_CAPABILITY, "mmvet-ocr", need_sign=True))
    for i, s in enumerate(scenes):
        cap = MMVET_CAPABILITIES[i % len(MMVET_CAPABILITIES)]
        o = rng.choice(s.objects)
        if cap == "recognition":
            qa, caps = texts.color_qa(o), ["recognition"]
        elif cap == "counting":
            qa, caps = texts.count_qa(s), ["recognition", "counting"]
        elif cap == "spatial":
            qa = texts.position_qa(o) if len(s.objects) < 2 or rng.random() < 0.5 else \
                texts.spatial_qa(*rng.sample(list(s.objects), 2), rng.choice(texts.RELATIONS))
            caps = ["recognition", "spatial"]
        elif cap == "ocr":
            s = next(signs)
            qa, caps = texts.ocr_qa(next(x for x in s.objects if x.text is not None)), ["ocr"]
        else:
            qa, caps = texts.describe_qa(s), ["recognition", "generation"]
        w.add("mmvet", {"id": f"mmvet-{i:04d}", "image": w.image("mmvet", i, s), "image_id": f"mmvet-{i:04d}",
                        "question": qa.question, "target": qa.answer, "qtype": qa.kind,
                        "capabilities": json.dumps(caps), "scene": json.dumps(s.to_dict()),
                        "meta": json.dumps({"kind": qa.kind, **qa.meta})})


# ---------------------------------------------------------------- CHAIR

def _chair(w: _Writer) -> None:
    for i, s in enumerate(_eval_scenes(CHAIR_IMAGES, "chair")):
        w.add("chair", {"id": f"chair-{i:04d}", "image": w.image("chair", i, s), "image_id": f"chair-{i:04d}",
                        "kind": "generative", "question": DESCRIBE_PROMPT, "target": describe(s),
                        "truth": json.dumps(sorted(s.classes)), "hallu": "[]"})
