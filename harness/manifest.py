"""Content manifests of benchmark data: sha256 per file and one hash for the whole.

`manifest(paths)` hashes files and directories (recursively); `suite_manifest(suite, include_dirs)` finds the
files a suite's lmms-eval tasks read -- the task YAML, the local data files it names (`dataset_kwargs.data_files`)
and every image those documents point to -- and manifests them. The manifest hash is part of the evaluation cache
keys and of each suite's result in a record, so a changed ground truth (same item count) or a grown suite is a
new evaluation, and a comparison of results made on different data is refused (harness.compare, harness.gate).

A task whose data comes from the Hugging Face hub (e.g. lmms-eval's POPE) has no local files to hash: its entry
names the hub dataset (`hub:<path>`), so at least a change of dataset is seen; its content is not.
No torch: the gate and `harness ls` may import this.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from harness.io import file_sha256, stable_hash

# (path, size, mtime_ns, inode) -> sha256: re-hashing is skipped only within one process and only while the
# file's size, mtime and inode are those it was hashed with.
_SHA_MEMO: dict[tuple[str, int, int, int], str] = {}
_IMAGE_FIELDS = ("image", "image_path")
HUB = "hub:"          # prefix of a pseudo-path naming a hub dataset


def file_hash(path: Path) -> str:
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo not in _SHA_MEMO:
        _SHA_MEMO[memo] = file_sha256(path)
    return _SHA_MEMO[memo]


def _files(path: Path) -> Iterable[tuple[str, Path]]:
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if f.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                yield f"{path.name}/{rel.as_posix()}", f
    elif path.is_file():
        yield path.name, path


def manifest(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None) -> dict:
    """{"files": {name: sha256}, "hash": one hash of them all} for files and directories (recursively).

    Names are relative to `root` when given (and the path lies under it), else the file's name (a directory's
    files: "<dir name>/<relative path>"), so the same data in another folder has the same manifest."""
    files: dict[str, str] = {}
    for p in paths:
        if isinstance(p, str) and p.startswith(HUB):
            files[p] = "hub"       # nothing local to hash
            continue
        for name, f in _files(Path(p)):
            if root is not None:
                try:
                    name = f.resolve().relative_to(Path(root).resolve()).as_posix()
                except ValueError:
                    pass
            files[name] = file_hash(f)
    return {"files": files, "hash": stable_hash(files, length=16)}


def _task_yaml(task: str, include_dirs: Iterable[str | os.PathLike]) -> Path | None:
    for d in include_dirs:
        for y in Path(d).glob("*.yaml"):
            if y.stem == task or _yaml(y).get("task") == task:
                return y
    return None


def _yaml(path: Path) -> dict:
    """An lmms-eval task YAML as a dict; its `!function x.y` tags (which plain YAML cannot construct) are kept
    as the text "!function x.y"."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass
    _Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix} {getattr(node, 'value', '')}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def yaml_identity(path: Path) -> str:
    """A task YAML's settings without the fields that hold paths (`include`, `dataset_kwargs`): the files they
    point to are manifested by content, so the same data in another folder or checkout gives the same hash."""
    settings = {k: v for k, v in _yaml(path).items() if k not in ("include", "dataset_kwargs")}
    return "yaml:" + stable_hash(settings, length=32)


def _data_files(task_yaml: Path, doc: dict) -> list[Path]:
    """The local data files the task YAML (`doc`, already parsed) names in dataset_kwargs.data_files."""
    spec = (doc.get("dataset_kwargs") or {}).get("data_files") or {}
    names = [v for val in (spec.values() if isinstance(spec, dict) else [spec])
             for v in (val if isinstance(val, list) else [val]) if isinstance(v, str)]
    return [p if p.is_absolute() else task_yaml.parent / p for p in map(Path, names)]


def _images(data_file: Path, task_yaml: Path) -> list[Path]:
    """Every image a JSONL data file's documents name, resolved as the task hooks do (absolute, or relative to
    the task folder, its data/ directory, or the data file's folder or one of its two parents: a data root's
    `<suite>/docs/x.jsonl` names images relative to the root). A missing image is left out here; loading it
    fails loudly."""
    out: list[Path] = []
    try:
        lines = data_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        try:
            doc = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError:
            continue
        for key in _IMAGE_FIELDS:
            value = doc.get(key) if isinstance(doc, dict) else None
            if not isinstance(value, str):
                continue
            for cand in (Path(value), task_yaml.parent / value, task_yaml.parent / "data" / value,
                         *(d / value for d in list(data_file.parents)[:3])):
                if cand.is_file():
                    out.append(cand)
                    break
    return out


def suite_files(tasks: Iterable[str], include_dirs: Iterable[str | os.PathLike]) -> list[Path | str]:
    """The files (and "hub:<task or dataset>" pseudo-paths) the given lmms-eval tasks read."""
    include_dirs = [Path(d) for d in include_dirs]
    out: list[Path | str] = []
    for task in tasks:
        y = _task_yaml(task, include_dirs)
        if y is None:            # an lmms-eval built-in task (e.g. pope_adv): data from the hub
            out.append(f"{HUB}{task}")
            continue
        out.append(y)
        doc = _yaml(y)
        base = doc.get("include")               # a generated YAML including our task (prompt, scoring settings)
        if isinstance(base, str):
            out.append(Path(base) if Path(base).is_absolute() else y.parent / base)
        data = _data_files(y, doc)
        if not data:
            out.append(f"{HUB}{doc.get('dataset_path')}")
        for f in data:
            out.append(f)
            out.extend(_images(f, y))
    return sorted(set(out), key=str)


def suite_manifest(suite, include_dirs: Iterable[str | os.PathLike]) -> dict:
    """The manifest of one Suite's data; names are relative to the include folder that holds them."""
    include_dirs = [Path(d) for d in include_dirs]
    files: dict[str, str] = {}
    for f in suite_files(suite.tasks, include_dirs):
        if isinstance(f, str):
            files.update(manifest([f])["files"])
            continue
        root = next((d for d in include_dirs if _under(f, d)), None)
        # a file outside every include folder (an included YAML, an absolute image path) is named by its folder
        # and name, never by an absolute path: the manifest of the same data is the same on every machine
        name = f.resolve().relative_to(root.resolve()).as_posix() if root else f"ext:{f.parent.name}/{f.name}"
        if not f.is_file():
            files[name] = "missing"        # lmms-eval's load fails loudly later; here it is just "missing"
        else:
            files[name] = yaml_identity(f) if f.suffix == ".yaml" else file_hash(f)
    return {"files": files, "hash": stable_hash(files, length=16)}


def _under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError):
        return False
