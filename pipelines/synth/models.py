"""Model name resolution shared by the synthesis components: zoo names ("micro-rm") or local paths."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


def resolve(name_or_path: str) -> Path:
    """A zoo name -> its directory (harness.zoo.store), else an existing local directory."""
    try:
        from harness.zoo.store import resolve_model
    except ImportError:  # the zoo store is optional for real-world runs with local paths
        resolve_model = None
    if resolve_model is not None:
        return Path(resolve_model(name_or_path))
    p = Path(name_or_path)
    if p.is_dir():
        return p
    raise HarnessError(f"model not found: {name_or_path!r} (neither a zoo name nor a local directory)")


def fingerprint(name_or_path: str) -> str:
    """Content hash of a model directory's weights and config: part of every cache key that uses it."""
    from harness.io import stable_hash, file_sha256
    d = resolve(name_or_path)
    files = sorted(p for p in d.iterdir() if p.suffix in (".safetensors", ".json") and p.is_file())
    return stable_hash({p.name: file_sha256(p) for p in files})
