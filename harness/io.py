"""Atomic file writes and content hashing: nothing half-written is ever left behind."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from harness.errors import HarnessError, RunFailed


@contextmanager
def environ_set(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set for the block, every one of those keys restored (or removed) after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it is renamed over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise disk_full(path) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def cache_dir() -> Path:
    """The harness's cache root: $HARNESS_CACHE_DIR, else ~/.cache/harness (base evaluations, micro data, judge
    and LLM replies, NLP data, served checkpoints)."""
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")


def disk_full(path: str | os.PathLike) -> RunFailed:
    """The one message a full disk gives (exit 3); the OSError stays its cause, for the run's error.log."""
    return RunFailed(f"disk full: no space left on the device while writing {path}; free some space and re-run "
                     f"(finished stages are kept and reused)")


def disk_full_path(exc: BaseException | None) -> str | None:
    """The file a full disk refused when `exc` or its cause/context chain is an ENOSPC OSError (libraries re-wrap
    it) or a shutil.copytree error list holding one (copytree keeps only each error's text); None otherwise."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return str(exc.filename or "")
        if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
            for entry in exc.args[0]:
                if len(entry) == 3 and f"[Errno {errno.ENOSPC}]" in str(entry[2]):
                    return str(entry[1])
        exc = exc.__cause__ or exc.__context__
    return None


def ensure_writable_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse, before any work, an output directory that cannot be one: a file, a device such as /dev/null, a
    path under a file, a read-only place. Creates nothing: a missing directory is probed at its nearest existing
    ancestor (a real write test, since permission bits say nothing to root or about read-only mounts)."""
    path = Path(path)
    probe = path
    while not (probe.exists() or probe.is_symlink()) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        kind = "a file" if probe.is_file() else "a device or other special file"
        where = f"{what} {path}" if probe == path else f"{what} {path}: {probe}"
        raise HarnessError(f"{where} is {kind}, not a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".harness-write-test.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise HarnessError(f"{what} {path} is not writable (cannot create a file in {probe}: "
                           f"{e.strerror or e})") from None
    return path


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy / torch scalars
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-able value, independent of dict ordering (cache keys, config hashes)."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


FICLONE = 0x40049409      # linux/fs.h: share the source's blocks copy-on-write (btrfs, XFS, ...)


def reflink_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Copy `src` to `dst` as a reflink where the filesystem supports one (instant, no extra space, and a write
    to either file never reaches the other), else as an ordinary copy. Usable as copytree's copy_function."""
    import shutil
    try:
        import fcntl
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        shutil.copystat(src, dst)
    except (OSError, ImportError):
        shutil.copy2(src, dst)           # overwrites the empty file a failed clone left
    return str(dst)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_identity(folder: str | os.PathLike) -> dict[str, str]:
    """{file name: identity} of a checkpoint's or adapter's *.safetensors: sha256 up to 256 MiB (the micro zoo,
    LoRA adapters), size + mtime above (real 7B shards, whose hashing would take minutes on every resume check)."""
    out = {}
    for p in sorted(Path(folder).glob("*.safetensors")):
        st = p.stat()
        out[p.name] = file_sha256(p) if st.st_size <= 256 << 20 else f"size={st.st_size},mtime_ns={st.st_mtime_ns}"
    return out
