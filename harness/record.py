"""The typed run record (docs/design.md, "Run directory and record"): everything tables, leaderboards and the gate need.

Tables and boards are pure functions of records; re-tabulating never re-runs a model.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.io import write_json

SCHEMA_VERSION = 1
TRACKED_PACKAGES = ("harness", "torch", "transformers", "trl", "peft", "datasets", "lmms-eval", "numpy", "scipy")


@dataclass
class MetricValue:
    value: float
    ci: list[float]          # 95 % interval [lo, hi]
    n: int                   # items the metric is computed over
    direction: str           # "higher" | "lower" | "target:<v>"


@dataclass
class SuiteResult:
    suite: str
    version: str
    metrics: dict[str, MetricValue]
    failures: dict[str, int] = field(default_factory=dict)   # e.g. {"parse": 3, "judge": 0}
    samples: str = ""                                        # path relative to the run directory
    primary: str = ""
    # What the numbers were computed from. Records made before these fields existed load with the defaults,
    # which mean "unknown" (never a mismatch): the comparisons and the gate only refuse two known, different values.
    data: str = ""                   # hash of the suite's data manifest (harness.manifest): files + images
    judge: dict | None = None        # the judge's identity (kind, model, endpoint, template), judged suites only
    items: int | None = None         # items answered (rows in the samples file)


@dataclass
class Comparison:
    delta: float             # aligned - base
    ci: list[float]          # 95 % interval of the delta
    p_value: float | None
    test: str                # "mcnemar" | "paired-bootstrap"
    direction: str = "higher"
    mde: float | None = None  # minimum detectable effect at these items (α 0.05, power 0.8; harness.stats)


@dataclass
class RunRecord:
    kind: str                                   # "run" (base vs aligned) | "eval" (one checkpoint)
    method: str | None = None
    size: int | None = None
    world: str = "micro"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    command: str = ""                           # the command line that produced the record (for boards)
    packages: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    machine: str = ""
    created: str = ""
    timings: dict[str, float] = field(default_factory=dict)   # stage -> wall seconds
    checkpoints: dict[str, dict[str, SuiteResult]] = field(default_factory=dict)  # "base"/"aligned" -> suite -> result
    checkpoint_paths: dict[str, str] = field(default_factory=dict)
    comparisons: dict[str, dict[str, Comparison]] = field(default_factory=dict)    # suite -> metric -> comparison
    status: str = "ok"                          # "ok" | "error" (a failed run: see `error`; exit code 3)
    error: dict[str, str] = field(default_factory=dict)   # {"stage", "message", "log"} when status is "error"
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        try:
            if d.get("schema_version") != SCHEMA_VERSION:
                raise HarnessError(f"record schema_version {d.get('schema_version')!r} is not {SCHEMA_VERSION}")
            d = dict(d)
            d["checkpoints"] = {
                ck: {s: SuiteResult(**{**r, "metrics": {m: MetricValue(**v) for m, v in r["metrics"].items()}})
                     for s, r in suites.items()}
                for ck, suites in d.get("checkpoints", {}).items()}
            d["comparisons"] = {s: {m: Comparison(**c) for m, c in ms.items()}
                                for s, ms in d.get("comparisons", {}).items()}
            return cls(**d)
        except HarnessError:
            raise
        except (TypeError, KeyError, AttributeError) as e:
            raise HarnessError(f"malformed run record: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        path = Path(path)
        if not path.is_file():
            raise HarnessError(f"record not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise HarnessError(f"malformed record {path}: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def load_finished(cls, path: str | Path, use: str) -> "RunRecord":
        """A record whose numbers can be used (gated, published, compared, re-judged): a failed run's record
        (status "error", exit 3) is refused with its stage and message instead of a vaguer error later."""
        rec = cls.load(path)
        if rec.status == "error":
            err = rec.error or {}
            raise HarnessError(f"{path} is the record of a failed run (stage {err.get('stage', '?')}: "
                               f"{err.get('message', '?')}); it has no numbers to {use}: re-run it first")
        return rec


def package_versions() -> dict[str, str]:
    """Versions of the packages that make the numbers, plus "lock": the install lock and its hash."""
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    lock = lock_identity()
    if lock:
        out["lock"] = lock
    return out


def lock_identity() -> str:
    """'<lock file>:<sha256[:16]>' of the lock this environment was installed from (scripts/setup.sh: the CPU
    lock pins torch's "+cpu" build, the GPU lock PyPI's CUDA build); "" when the checkout has no lock."""
    from harness.io import file_sha256
    root = Path(__file__).resolve().parent.parent
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = ""
    name = "requirements.txt" if torch_version.endswith("+cpu") else "requirements-gpu.txt"
    path = root / name
    if not path.is_file():
        return ""
    return f"{name}:{file_sha256(path)[:16]}"


# What a result depends on: code, presets, suites and the zoo weights (edits to README or leaderboards do not count).
CODE_PATHS = ("harness", "pipelines", "benchmarks")


def git_commit(cwd: str | Path | None = None) -> str | None:
    """HEAD's sha, with "-dirty" appended when tracked code under CODE_PATHS differs from it: a record made from
    uncommitted code must not claim a commit it cannot be reproduced from."""
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        sha = out.stdout.strip() if out.returncode == 0 else ""
        if not sha:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                                cwd=cwd, capture_output=True, text=True, timeout=10)
        return sha + "-dirty" if status.returncode == 0 and status.stdout.strip() else sha
    except (OSError, subprocess.SubprocessError):
        return None


def short_commit(commit: str | None, n: int = 8) -> str:
    """The first n hex digits, keeping a "-dirty" mark visible."""
    if not commit:
        return ""
    return commit[:n] + ("-dirty" if commit.endswith("-dirty") else "")


def machine_description() -> str:
    import os
    return f"{platform.machine()} {os.cpu_count()} cpu {platform.system()}"


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
