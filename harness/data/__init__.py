"""The real world's benchmark data: one local layout under a data root, built from each benchmark's own release.

`harness data prepare SUITE --from PATH` (harness.data.convert) reads the official files and writes
`<root>/<suite>/docs/*.jsonl` (one document per item, in the schema our lmms-eval tasks read; `image` is a path
relative to the root), `<root>/<suite>/images/` (only the images the documents use) and
`<root>/<suite>/MANIFEST.json` (sha256 of every file, item counts, what it was prepared from). `--from hub`
(harness.data.hub) fills the same layout from the hub datasets lmms-eval uses, on a connected machine.

The root is $HARNESS_DATA_DIR, else ~/.cache/harness/data. Evaluation never reads the hub: `task_dir()` writes
lmms-eval task YAMLs into the root that include benchmarks/tasks/real's and point `data_files` at the root's
documents, and `check(suites)` refuses a missing or incomplete suite directory with one message before any model
loads. No torch import here (`harness run --dry-run` uses it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.errors import HarnessError

MANIFEST = "MANIFEST.json"
SCHEMA = 1
REAL_TASKS = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "tasks" / "real"

# suite -> {lmms-eval task: docs file}; the docs file names are the same for every way of preparing
SUITE_DOCS: dict[str, dict[str, str]] = {
    "pope": {"harness_pope_random": "random.jsonl", "harness_pope_pop": "popular.jsonl",
             "harness_pope_adv": "adversarial.jsonl"},
    "amber": {"harness_amber_g": "amber_g.jsonl", "harness_amber_d": "amber_d.jsonl"},
    "mmhal": {"harness_mmhal": "mmhal.jsonl"},
    "mmvet": {"harness_mmvet": "mmvet.jsonl"},
    "object-halbench": {"harness_object_halbench": "object_halbench.jsonl"},
}
# items in each official release (checked when preparing from a full release; a subset is allowed with --subset)
OFFICIAL_COUNTS = {"pope": {"random.jsonl": 3000, "popular.jsonl": 3000, "adversarial.jsonl": 3000},
                   "amber": {"amber_g.jsonl": 1004, "amber_d.jsonl": 14216},
                   "mmhal": {"mmhal.jsonl": 96}, "mmvet": {"mmvet.jsonl": 218},
                   "object-halbench": {"object_halbench.jsonl": 300}}


def data_root() -> Path:
    env = os.environ.get("HARNESS_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harness" / "data"


def suite_dir(suite: str, root: Path | None = None) -> Path:
    if suite not in SUITE_DOCS:
        raise HarnessError(f"unknown real suite {suite!r} (known: {', '.join(SUITE_DOCS)})")
    return (root or data_root()) / suite


def manifest_files(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `directory` except the manifest itself (sorted)."""
    from harness.io import file_sha256
    return {p.relative_to(directory).as_posix(): file_sha256(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def write_manifest(directory: Path, suite: str, source: dict, counts: dict[str, int]) -> dict:
    from harness.io import write_json
    from harness.record import now_iso
    manifest = {"schema": SCHEMA, "suite": suite, "source": source, "counts": counts, "created": now_iso(),
                "files": manifest_files(directory)}
    write_json(directory / MANIFEST, manifest)
    return manifest


def read_manifest(suite: str, root: Path | None = None) -> dict:
    d = suite_dir(suite, root)
    how = f"prepare it with `harness data prepare {suite} --from PATH` (or --from hub on a connected machine)"
    if not (d / MANIFEST).is_file():
        raise HarnessError(f"no prepared data for suite {suite!r} in {d} (data root: $HARNESS_DATA_DIR or "
                           f"~/.cache/harness/data): {how}")
    try:
        manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise HarnessError(f"{d / MANIFEST} is unreadable ({e}): {how}") from None
    if manifest.get("suite") != suite or manifest.get("schema") != SCHEMA:
        raise HarnessError(f"{d / MANIFEST} was written for {manifest.get('suite')!r} (schema "
                           f"{manifest.get('schema')}), not {suite!r}: {how}")
    return manifest


def check(suites, root: Path | None = None, hashes: bool = False) -> dict[str, dict]:
    """Every real suite's directory is prepared and complete -> {suite: manifest}; else one HarnessError.

    Complete: the manifest's files all exist (`hashes=True` also recomputes their sha256, as
    `harness data verify` does) and every docs file the suite's tasks read is among them."""
    from harness.io import file_sha256
    out = {}
    for suite in suites:
        if suite not in SUITE_DOCS:
            continue                                   # micro suites carry their own data
        manifest = read_manifest(suite, root)
        d = suite_dir(suite, root)
        files = manifest.get("files") or {}
        for name in SUITE_DOCS[suite].values():
            if f"docs/{name}" not in files:
                raise HarnessError(f"prepared data for {suite!r} in {d} has no docs/{name}: prepared from the "
                                   f"wrong files? re-run `harness data prepare {suite} --from PATH`")
        for rel, sha in files.items():
            p = d / rel
            if not p.is_file():
                raise HarnessError(f"prepared data for {suite!r} is incomplete: {p} is missing (re-run "
                                   f"`harness data prepare {suite}`)")
            if hashes and file_sha256(p) != sha:
                raise HarnessError(f"prepared data for {suite!r} changed since it was prepared: {p} (hash "
                                   "mismatch; re-run `harness data prepare`)")
        out[suite] = manifest
    return out


def task_dir(root: Path | None = None) -> Path:
    """lmms-eval task YAMLs for the real suites reading the data root, written into the root itself (so a
    document's `image`, relative to the root, is also relative to its task YAML, where harness.manifest looks):
    each includes our task of the same name in benchmarks/tasks/real (prompt, generation settings, scoring) and
    replaces only its data files."""
    root = root or data_root()
    root.mkdir(parents=True, exist_ok=True)
    for suite, tasks in SUITE_DOCS.items():
        for task, docs in tasks.items():
            text = (f"# generated by harness.data.task_dir: {task} on the data root's {suite}/docs/{docs}\n"
                    f"include: {REAL_TASKS / (task + '.yaml')}\n"
                    f"task: {task}\n"
                    f"dataset_path: json\n"
                    f"dataset_kwargs:\n  data_files:\n    test: {suite_dir(suite, root) / 'docs' / docs}\n"
                    f"test_split: test\n")
            path = root / f"{task}.yaml"
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
    return root


def tasks_for(suite: str):
    """A real suite's lmms-eval include folder as a function (Suite.include): checks that the suite's data is
    prepared (one HarnessError naming the fix, before any model loads), then returns task_dir()."""
    def include() -> Path:
        check([suite])
        return task_dir()
    include.__name__ = f"tasks_for_{suite.replace('-', '_')}"
    return include


def image_path(value: str) -> Path:
    """A document's `image`: absolute, or relative to the data root."""
    p = Path(value)
    return p if p.is_absolute() else data_root() / p
