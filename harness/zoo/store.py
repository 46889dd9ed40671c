"""The zoo on disk: names -> HF directories, a MANIFEST of hashes, verification. No torch import here.

Layout: <zoo dir>/<name>/ (save_pretrained output: *.safetensors, config, tokenizer/processor files, card.json)
and <zoo dir>/MANIFEST.json = {"schema": 1, "seed", "reduced", "versions", "models": {name: {"files":
{relative path: {"sha256", "size"}}, "card": {...}}}}. The default zoo dir is the committed harness/zoo/weights;
the environment variable HARNESS_ZOO_DIR overrides it (tests point it at a reduced zoo).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.errors import HarnessError
from harness.io import file_sha256, write_json

ZOO_NAMES = ("micro-llava", "micro-responder-a", "micro-responder-b", "micro-clip", "micro-rm", "micro-rm-blind")
DEFAULT_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = "MANIFEST.json"
ALLOWED_SUFFIXES = (".safetensors", ".json", ".jinja", ".txt", ".model")
MANIFEST_SCHEMA = 1


def zoo_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override)
    env = os.environ.get("HARNESS_ZOO_DIR")
    return Path(env) if env else DEFAULT_DIR


def read_manifest(directory: str | os.PathLike | None = None) -> dict:
    d = zoo_dir(directory)
    path = d / MANIFEST
    if not path.exists():
        raise HarnessError(f"zoo manifest missing: {path} (build it with `harness zoo build`)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HarnessError(f"zoo manifest {path} is not valid JSON: {e}") from e


def model_files(model_dir: Path) -> dict[str, dict]:
    """{relative path: {sha256, size}} of every file of one model directory (sorted, hidden files skipped)."""
    out = {}
    for f in sorted(model_dir.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            if f.suffix not in ALLOWED_SUFFIXES:
                raise HarnessError(f"zoo file {f} has a disallowed type (only safetensors/json/text files)")
            out[f"{model_dir.name}/{f.relative_to(model_dir).as_posix()}"] = {"sha256": file_sha256(f),
                                                                            "size": f.stat().st_size}
    return out


def update_manifest(directory: Path, name: str, build_info: dict) -> None:
    """Record (or replace) one model's file hashes and card in the manifest."""
    path = directory / MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"schema": MANIFEST_SCHEMA, "models": {}}
    manifest.update({k: v for k, v in build_info.items() if k != "models"})
    card_path = directory / name / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    manifest["models"][name] = {"files": model_files(directory / name), "card": card}
    write_json(path, manifest)


def _check_files(directory: Path, files: dict[str, dict]) -> None:
    for rel, meta in files.items():
        f = directory / rel
        if not f.exists():
            raise HarnessError(f"zoo file missing: {f} (rebuild with `harness zoo build`)")
        if f.stat().st_size != meta["size"] or file_sha256(f) != meta["sha256"]:
            raise HarnessError(f"zoo file corrupted (hash mismatch): {f}")


def verify(directory: str | os.PathLike | None = None, names: list[str] | None = None) -> dict:
    """Recompute every recorded hash; HarnessError naming the first missing or corrupted file.

    Returns {"dir", "models", "files", "bytes"}."""
    d = zoo_dir(directory)
    manifest = read_manifest(d)
    models = manifest.get("models", {})
    wanted = names or list(models)
    n_files = n_bytes = 0
    for name in wanted:
        if name not in models:
            raise HarnessError(f"zoo model {name!r} is not in {d / MANIFEST}")
        files = models[name]["files"]
        if not any(rel.endswith(".safetensors") for rel in files):
            raise HarnessError(f"zoo model {name!r} has no safetensors weights in the manifest")
        _check_files(d, files)
        n_files += len(files)
        n_bytes += sum(m["size"] for m in files.values())
    return {"dir": str(d), "models": wanted, "files": n_files, "bytes": n_bytes}


def verify_cli(directory: str | None = None) -> None:
    info = verify(directory)
    print(f"zoo ok: {len(info['models'])} models, {info['files']} files, {info['bytes'] / 1e6:.2f} MB "
          f"verified in {info['dir']}")


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """Zoo name -> its verified directory; otherwise an existing local path. HarnessError if neither."""
    name = str(name_or_path)
    if name in ZOO_NAMES:
        d = zoo_dir()
        verify(d, [name])
        return d / name
    p = Path(name).expanduser()
    if p.exists():
        return p
    raise HarnessError(f"unknown model {name!r}: not a zoo name ({', '.join(ZOO_NAMES)}) and no such path")


def list_models(directory: str | os.PathLike | None = None) -> list[dict]:
    """Zoo models with their card figures, from the manifest only (cheap; no torch, no hashing)."""
    try:
        manifest = read_manifest(directory)
    except HarnessError:
        return []
    rows = []
    for name, entry in sorted(manifest.get("models", {}).items()):
        card = entry.get("card", {})
        rows.append({"name": name, "kind": card.get("kind", ""), "params": card.get("params"),
                     "bytes": sum(m["size"] for m in entry.get("files", {}).values()),
                     "checks": card.get("checks", {}), "seed": manifest.get("seed")})
    return rows
