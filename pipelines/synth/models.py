"""Model name resolution shared by the synthesis components: zoo names ("micro-rm"), local paths or hub ids
(harness.models.hub: the HF cache, a download when connected, the cache only when offline)."""

from __future__ import annotations

from pathlib import Path

BIG_FILE = 256 << 20      # above this, hashing on every resume check would take minutes (7B shards)


def resolve(name_or_path: str, remote_code: bool = False) -> Path:
    from harness.models.hub import resolve as resolve_any
    return resolve_any(name_or_path, remote_code=remote_code)


def fingerprint(name_or_path: str) -> str:
    """Content hash of a model directory's weights and config: part of every cache key that uses it."""
    from harness.io import stable_hash
    d = resolve(name_or_path)
    files = sorted(p for p in d.rglob("*") if p.suffix in (".safetensors", ".json") and p.is_file())
    return stable_hash({p.relative_to(d).as_posix(): file_identity(p) for p in files})


def file_identity(p: Path) -> str:
    """sha256 of the file; for a big file in the HF cache, the blob's name (the hub's sha256 of it), else its
    size and mtime."""
    from harness.io import file_sha256
    if p.stat().st_size <= BIG_FILE:
        return file_sha256(p)
    real = p.resolve()
    if real.parent.name == "blobs" and len(real.name) == 64:
        return real.name
    st = real.stat()
    return f"size={st.st_size},mtime_ns={st.st_mtime_ns}"
