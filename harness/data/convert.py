"""`harness data prepare SUITE --from PATH`: each benchmark's own release -> the data root's layout.

What each converter reads (file names as the benchmarks publish them; docs/benchmarks-data.md has the formats):
- pope: POPE's `coco_pope_{random,popular,adversarial}.json` (one JSON object per line: question_id, image, text,
  label) + the COCO val2014 images they name;
- amber: AMBER's `data/query/query_generative.json`, `data/query/query_discriminative.json` (id, image, query),
  `data/annotations.json` (id, type, truth[, hallu]; the official type names, `discriminative-hallucination`
  included), `data/relation.json` and `data/safe_words.txt` (the generative scorer's word lists) + its images
  (AMBER_<id>.jpg);
- mmhal: MMHal-Bench's `response_template.json` + `images/` (an item's image is the last part of its image_src);
- mmvet: MM-Vet's `mm-vet.json` ({question id: {imagename, capability, question, answer}}) + `images/`;
- object-halbench: RLAIF-V's `eval/data/obj_halbench_300_with_image.jsonl` (image_id, question, image as base64)
  + COCO 2014 `instances_{val,train}2014.json` (the annotated objects are each item's truth) and
  `captions_{val,train}2014.json` (its reference captions, which chair.py's ground truth also reads).
Every path given with --from is searched (recursively) for these files and for the images by name, so the
releases can sit in separate folders. A release with fewer items than the official one is refused unless
`--subset` says it is meant (the manifest records it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

from harness.errors import HarnessError


class Sources:
    """The --from folders: find a file by name, an image by file name."""

    def __init__(self, paths):
        self.paths = [Path(p).expanduser() for p in paths]
        for p in self.paths:
            if not p.exists():
                raise HarnessError(f"--from {p}: no such file or directory")
        self._images: dict[str, Path] | None = None

    def find(self, name: str, suite: str, required: bool = True) -> Path | None:
        for p in self.paths:
            if p.is_file() and p.name == name:
                return p
            hits = sorted(p.rglob(name)) if p.is_dir() else []
            if hits:
                return hits[0]
        if required:
            raise HarnessError(f"{suite}: {name} not found under {', '.join(map(str, self.paths))} (is this the "
                               f"benchmark's official release? see `harness data prepare --help`)")
        return None

    def image(self, name: str, suite: str) -> Path:
        if self._images is None:
            self._images = {}
            for p in self.paths:
                for f in (p.rglob("*") if p.is_dir() else [p]):
                    if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and f.is_file():
                        self._images.setdefault(f.name, f)
        if name not in self._images:
            raise HarnessError(f"{suite}: image {name} not found under {', '.join(map(str, self.paths))}")
        return self._images[name]


def read_json_or_lines(path: Path):
    """A JSON document, or one JSON object per line (POPE's .json files are the latter)."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise HarnessError(f"{path}: neither JSON nor JSON lines ({e})") from None


class Writer:
    """Builds one suite directory in a temporary sibling; `commit()` swaps it in."""

    def __init__(self, out: Path, suite: str):
        self.suite = suite
        self.out = out
        self.tmp = out.parent / f".{out.name}.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        (self.tmp / "docs").mkdir(parents=True)
        (self.tmp / "images").mkdir()
        self.docs: dict[str, list[dict]] = {}

    def image_from(self, src: Path, name: str | None = None) -> str:
        """Put an image in the suite's images/ (hard link when possible) -> its path relative to the data root."""
        name = name or src.name
        dst = self.tmp / "images" / name
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        return f"{self.suite}/images/{name}"

    def image_bytes(self, data: bytes, name: str) -> str:
        (self.tmp / "images" / name).write_bytes(data)
        return f"{self.suite}/images/{name}"

    def extra(self, src: Path, name: str) -> None:
        """A file the suite's scoring reads besides its documents, kept at the suite directory's top."""
        shutil.copyfile(src, self.tmp / name)

    def add(self, docs_file: str, doc: dict) -> None:
        self.docs.setdefault(docs_file, []).append(doc)

    def commit(self, source: dict, subset: bool) -> dict:
        from harness.data import OFFICIAL_COUNTS, SUITE_DOCS, write_manifest
        from harness.io import write_jsonl
        counts = {name: len(self.docs.get(name, [])) for name in SUITE_DOCS[self.suite].values()}
        empty = [n for n, c in counts.items() if c == 0]
        if empty:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise HarnessError(f"{self.suite}: no items for {', '.join(empty)} in the given files")
        short = {n: (c, OFFICIAL_COUNTS[self.suite][n]) for n, c in counts.items()
                 if c != OFFICIAL_COUNTS[self.suite][n]}
        if short and not subset:
            shutil.rmtree(self.tmp, ignore_errors=True)
            detail = ", ".join(f"{n}: {c} (official: {o})" for n, (c, o) in short.items())
            raise HarnessError(f"{self.suite}: item counts differ from the official release ({detail}); pass "
                               "--subset if a partial release is meant")
        for name, docs in self.docs.items():
            write_jsonl(self.tmp / "docs" / name, docs)
        manifest = write_manifest(self.tmp, self.suite, {**source, "subset": bool(short)}, counts)
        if self.out.exists():
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)
        return manifest


POPE_SPLITS = {"random": "random.jsonl", "popular": "popular.jsonl", "adversarial": "adversarial.jsonl"}


def convert_pope(src: Sources, w: Writer) -> None:
    for split, docs in POPE_SPLITS.items():
        for row in read_json_or_lines(src.find(f"coco_pope_{split}.json", "pope")):
            label = str(row["label"]).strip().lower()
            if label not in ("yes", "no"):
                raise HarnessError(f"pope {split}: question {row.get('question_id')} has label {row['label']!r}")
            w.add(docs, {"question_id": row["question_id"], "question": row["text"], "answer": label,
                         "image_source": Path(row["image"]).stem, "category": split,
                         "image": w.image_from(src.image(row["image"], "pope"))})


def convert_amber(src: Sources, w: Writer) -> None:
    from benchmarks.official.amber import discriminative_type
    for name in ("relation.json", "safe_words.txt"):      # the generative scorer's word lists (data/)
        w.extra(src.find(name, "amber"), name)
    annotations = {int(a["id"]): a for a in read_json_or_lines(src.find("annotations.json", "amber"))}
    for kind, docs in (("generative", "amber_g.jsonl"), ("discriminative", "amber_d.jsonl")):
        for q in read_json_or_lines(src.find(f"query_{kind}.json", "amber")):
            ann = annotations.get(int(q["id"]))
            if ann is None:
                raise HarnessError(f"amber: query {q['id']} has no entry in annotations.json")
            image = w.image_from(src.image(q["image"], "amber"))
            if kind == "generative":
                if ann.get("type") != "generative":
                    raise HarnessError(f"amber: generative query {q['id']} is annotated as {ann.get('type')!r}")
                w.add(docs, {"id": q["id"], "question_id": q["id"], "query": q["query"], "truth": ann["truth"],
                             "hallu": ann.get("hallu", []), "image": image})
            else:
                discriminative_type(ann.get("type"))        # the official type names only
                w.add(docs, {"id": q["id"], "query": q["query"], "truth": str(ann["truth"]).strip().lower(),
                             "type": ann["type"], "image": image})


def convert_mmhal(src: Sources, w: Writer) -> None:
    for row in read_json_or_lines(src.find("response_template.json", "mmhal")):
        name = str(row["image_src"]).split("/")[-1]
        w.add("mmhal.jsonl", {**row, "image": w.image_from(src.image(name, "mmhal"))})


def convert_mmvet(src: Sources, w: Writer) -> None:
    data = read_json_or_lines(src.find("mm-vet.json", "mmvet"))
    if not isinstance(data, dict):
        raise HarnessError("mmvet: mm-vet.json should map question ids to items")
    for qid, row in data.items():
        caps = row.get("capability") or []
        w.add("mmvet.jsonl", {"question_id": qid, "question": row["question"], "answer": row["answer"],
                              "capability": ",".join(caps) if isinstance(caps, list) else str(caps),
                              "image": w.image_from(src.image(row["imagename"], "mmvet"))})


def coco_objects(src: Sources) -> dict[int, list[str]]:
    """image id -> the COCO category names annotated in it (instances_{val,train}2014.json, whichever exist)."""
    files = [f for f in (src.find(n, "object-halbench", required=False)
                         for n in ("instances_val2014.json", "instances_train2014.json")) if f]
    if not files:
        raise HarnessError("object-halbench: COCO 2014 annotations (instances_val2014.json) not found")
    objects: dict[int, list[str]] = {}
    for f in files:
        coco = json.loads(f.read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in coco["categories"]}
        for a in coco["annotations"]:
            found = objects.setdefault(int(a["image_id"]), [])
            if names[a["category_id"]] not in found:
                found.append(names[a["category_id"]])
    return objects


def coco_captions(src: Sources) -> dict[int, list[str]]:
    """image id -> COCO's reference captions (captions_{val,train}2014.json): chair.py's ground truth adds the
    classes they mention to the segmentation objects."""
    files = [f for f in (src.find(n, "object-halbench", required=False)
                         for n in ("captions_val2014.json", "captions_train2014.json")) if f]
    if not files:
        raise HarnessError("object-halbench: COCO 2014 captions (captions_val2014.json, in the same annotations "
                           "release as instances_val2014.json) not found")
    captions: dict[int, list[str]] = {}
    for f in files:
        for a in json.loads(f.read_text(encoding="utf-8"))["annotations"]:
            captions.setdefault(int(a["image_id"]), []).append(a["caption"])
    return captions


def convert_object_halbench(src: Sources, w: Writer) -> None:
    objects, captions = coco_objects(src), coco_captions(src)
    for row in read_json_or_lines(src.find("obj_halbench_300_with_image.jsonl", "object-halbench")):
        iid = int(row["image_id"])
        if iid not in objects:
            raise HarnessError(f"object-halbench: image {iid} has no COCO 2014 annotation")
        try:
            data = base64.b64decode(row["image"], validate=True)
        except (ValueError, TypeError):
            raise HarnessError(f"object-halbench: image {iid} is not base64") from None
        w.add("object_halbench.jsonl", {"image_id": iid, "question": row["question"], "truth": objects[iid],
                                        "captions": captions.get(iid, []),
                                        "image": w.image_bytes(data, f"{iid:012d}.jpg")})


CONVERTERS = {"pope": convert_pope, "amber": convert_amber, "mmhal": convert_mmhal, "mmvet": convert_mmvet,
              "object-halbench": convert_object_halbench}


def prepare(suite: str, sources: list[str], root: Path | None = None, subset: bool = False) -> dict:
    """Convert `suite` from its official files under `sources` (or "hub") -> its manifest."""
    from harness.data import data_root, suite_dir
    if suite not in CONVERTERS:
        raise HarnessError(f"unknown real suite {suite!r} (known: {', '.join(CONVERTERS)})")
    out = suite_dir(suite, root or data_root())
    out.parent.mkdir(parents=True, exist_ok=True)
    w = Writer(out, suite)
    try:
        if sources == ["hub"]:
            from harness.data.hub import fill_from_hub
            fill_from_hub(suite, w)
            source = {"from": "hub"}
        else:
            CONVERTERS[suite](Sources(sources), w)
            source = {"from": [str(Path(s).expanduser().resolve()) for s in sources]}
        return w.commit(source, subset)
    except (KeyError, TypeError, ValueError) as e:
        shutil.rmtree(w.tmp, ignore_errors=True)
        raise HarnessError(f"{suite}: the files do not have the official format ({type(e).__name__}: {e})") from None
    except HarnessError:
        shutil.rmtree(w.tmp, ignore_errors=True)
        raise
