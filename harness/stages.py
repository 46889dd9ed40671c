"""Content-addressed stage caching: a re-run after a kill resumes at the first unfinished stage.

A stage's directory is `<root>/<name>-<key>` where key = hash(config slice + upstream stage keys + code
version). It is built in a hidden temporary sibling, a `DONE` marker (the stage's metadata: key, inputs,
wall time, and the size + sha256 of every file the stage wrote) is written last, and only then is the
directory renamed into place (one atomic rename), so a killed stage leaves nothing that looks finished: the
next run removes the leftover and starts that stage again.

A finished stage is reused only after its files are checked against DONE: a file missing, truncated or
changed since (a full disk, an editor, a damaged copy) makes the stage damaged, which is said on the console
and the stage is computed again -- damage is never served. Files above HASH_LIMIT are checked by size and
mtime only (hashing a 7B checkpoint shard on every resume would take minutes); a truncation still changes the
size. A stage written before DONE listed its files cannot be checked and is computed again too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness import parallel
from harness.io import file_sha256, stable_hash, write_json

DONE = "DONE"
HASH_LIMIT = 256 << 20       # bytes; larger files are verified by size + mtime (see the module docstring)
_CODE_CACHE: dict[tuple[str, ...], str] = {}


def code_version(*modules: str) -> str:
    """Hash of the source files of `modules` (a package counts all its .py files): editing the code that
    produces a stage invalidates that stage's cache, nothing else does."""
    key = tuple(sorted(modules))
    if key in _CODE_CACHE:
        return _CODE_CACHE[key]
    h = hashlib.sha256()
    for name in key:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            h.update(f"missing:{name}".encode())
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(str(f.relative_to(origin.parent)).encode())
            h.update(f.read_bytes())
    _CODE_CACHE[key] = h.hexdigest()[:16]
    return _CODE_CACHE[key]


@dataclass
class StageResult:
    name: str
    key: str
    path: Path
    meta: dict
    cached: bool

    @property
    def seconds(self) -> float:
        return float(self.meta.get("seconds", 0.0))

    @property
    def output(self) -> Any:
        return self.meta.get("output")


def _pid_alive(pid: str) -> bool:
    """Whether process `pid` (a string from a scratch directory's name) still runs on this machine."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class Stages:
    """Stage directories under `root`; `stages.run(name, inputs, fn)` computes or reuses one."""

    def __init__(self, root: str | Path, log: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.log = log or (lambda msg: None)

    def key(self, name: str, inputs: dict) -> str:
        return stable_hash({"stage": name, "inputs": inputs})

    def path(self, name: str, inputs: dict) -> Path:
        return self.root / f"{name}-{self.key(name, inputs)}"

    def lookup(self, name: str, inputs: dict) -> StageResult | None:
        """The finished stage for `inputs` if it is intact; a damaged one is reported, removed and None."""
        path = self.path(name, inputs)
        done = path / DONE
        if not done.is_file():
            return None
        try:
            meta = json.loads(done.read_text(encoding="utf-8"))
            problem = verify_files(path, meta["files"]) if "files" in meta else \
                "DONE lists no file hashes (written by an older harness): it cannot be verified"
            key = meta["key"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            problem = f"unreadable DONE marker ({e})"
        if problem is None:
            return StageResult(name, key, path, meta, cached=True)
        self.log(f"{name}: finished stage {path} is damaged: {problem}; computing it again")
        _discard(path)
        return None

    def run(self, name: str, inputs: dict, fn: Callable[[Path], Any]) -> StageResult:
        """Return the finished stage for `inputs`, computing it with `fn(tmp_dir)` if needed.

        `fn` writes its files into the directory it is given and returns a JSON-able summary (kept in DONE).
        """
        hit = self.lookup(name, inputs)
        if parallel.agree(hit is not None):   # data-parallel ranks all take the same branch
            self.log(f"{name}: cached ({hit.seconds:.1f} s when computed) -> {hit.path}")
            return hit
        key = self.key(name, inputs)
        final = self.root / f"{name}-{key}"
        if not parallel.is_main():            # every rank computes (collectives inside); rank 0 publishes
            return self._run_follower(name, inputs, key, fn)
        # One scratch directory per process: two runs sharing a cache (the base-model evaluation is shared by
        # every run of the same base) may compute the same stage at once; neither may delete the other's work.
        tmp = self.root / f".{name}-{key}.{os.getpid()}.tmp"
        for stale in self.root.glob(f".{name}-{key}.*.tmp"):   # killed earlier attempts: never trust them
            if stale == tmp or not _pid_alive(stale.name.rsplit(".", 2)[-2]):
                shutil.rmtree(stale, ignore_errors=True)
        if final.exists():             # a directory without DONE (should not happen): redo it
            shutil.rmtree(final)
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            with parallel.scratch(self._work(name, key)):
                output = fn(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        meta = {"name": name, "key": key, "inputs": inputs, "seconds": round(time.perf_counter() - t0, 3),
                "output": output, "files": file_manifest(tmp)}
        write_json(tmp / DONE, meta)   # written last: its presence means the stage is complete
        try:
            os.replace(tmp, final)
        except OSError:
            # another process finished the same stage first: same inputs, same result; keep theirs
            hit = self.lookup(name, inputs)
            if hit is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            parallel.barrier()
            return hit
        parallel.barrier()                     # the followers read the published stage after this
        shutil.rmtree(self._work(name, key), ignore_errors=True)
        return StageResult(name, key, final, meta, cached=False)

    def _work(self, name: str, key: str) -> Path:
        """Persistent work directory of a stage being computed: finished units survive a killed run."""
        return self.root / f".{name}-{key}.work"

    def _run_follower(self, name: str, inputs: dict, key: str, fn: Callable[[Path], Any]) -> StageResult:
        """A rank > 0 computes in its own scratch directory (its share of the units), then takes rank 0's copy."""
        tmp = self.root / f".{name}-{key}.{os.getpid()}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            with parallel.scratch(self._work(name, key)):
                fn(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        parallel.barrier()
        hit = self.lookup(name, inputs)
        if hit is None:
            raise parallel.RankFailed(f"rank {parallel.rank()}: rank 0 did not publish stage {name}")
        return hit

    def sub(self, name: str) -> "Stages":
        """Stages nested under `root/name` (e.g. a method's synthesis components)."""
        return Stages(self.root / name, self.log)


def _file_entry(path: Path) -> dict:
    st = path.stat()
    if st.st_size > HASH_LIMIT:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"size": st.st_size, "sha256": file_sha256(path)}


def file_manifest(folder: Path) -> dict[str, dict]:
    """relative path -> {"size", "sha256"} (or "mtime_ns" above HASH_LIMIT) of every file under `folder`."""
    return {f.relative_to(folder).as_posix(): _file_entry(f)
            for f in sorted(folder.rglob("*")) if f.is_file() and f.name != DONE}


def verify_files(folder: Path, files: dict[str, dict]) -> str | None:
    """None when every listed file is there as recorded; else what is wrong with the first one that is not.
    (Files added later, e.g. a library's cache next to a dataset, are not the stage's and are not checked.)"""
    for rel, want in files.items():
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        st = f.stat()
        if st.st_size != want.get("size"):
            return f"{rel} has {st.st_size} bytes, {want.get('size')} were written (truncated or overwritten)"
        if "sha256" in want and file_sha256(f) != want["sha256"]:
            return f"{rel} changed since it was written (sha256 differs)"
        if "mtime_ns" in want and st.st_mtime_ns != want["mtime_ns"]:
            return f"{rel} was modified since it was written (mtime differs)"
    return None


def _discard(path: Path) -> None:
    """Move a damaged stage out of the way (atomically, so no other run reuses it meanwhile), then delete it."""
    aside = path.parent / f".{path.name}.damaged.{os.getpid()}.tmp"
    try:
        os.replace(path, aside)
    except OSError:
        aside = path
    shutil.rmtree(aside, ignore_errors=True)


def bar_display(*extra_columns, console=None):
    """The harness's one progress layout (description, bar, n/total, elapsed, then `extra_columns`), not started."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    *extra_columns, console=console, transient=False)


class progress:
    """A rich progress bar as a context manager; `bar(n_done)` updates it. Quiet when HARNESS_QUIET is set."""

    def __init__(self, description: str, total: int):
        self.description, self.total = description, total
        self._p = None

    def __enter__(self):
        if not os.environ.get("HARNESS_QUIET"):
            self._p = bar_display()
            self._p.start()
            self._task = self._p.add_task(self.description, total=self.total)
        return self

    def __call__(self, done: int) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=done)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.stop()
        return False
