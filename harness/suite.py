"""Suites and metrics as small value objects. Direction is declared once, here, and read by tables,
leaderboards and the gate. No torch: `harness ls` imports this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Rows = Sequence[dict]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str                    # "higher" | "lower" | "target:<value>" (e.g. POPE yes-ratio target:0.5)
    fn: Callable[[Rows], float]       # metric over per-item sample rows (bootstrap resamples rows)
    test: str = "bootstrap"           # paired test: "mcnemar" (needs item_key) | "bootstrap"
    item_key: str | None = None       # per-item boolean field for McNemar, e.g. "correct"
    gated: bool = False               # checked by `harness gate`
    rows_filter: Callable[[dict], bool] | None = None   # e.g. one POPE split
    description: str = ""

    def compute(self, rows: Rows) -> float:
        rows = [r for r in rows if self.rows_filter(r)] if self.rows_filter else list(rows)
        return float(self.fn(rows)) if rows else float("nan")

    def select(self, rows: Rows) -> list[dict]:
        return [r for r in rows if self.rows_filter(r)] if self.rows_filter else list(rows)


@dataclass(frozen=True)
class Suite:
    """A suite carries what it needs to run: its lmms-eval task folder (`include`), the judge rubric of a judged
    suite (`rubric`, a harness.judges task) and the builder of its per-item rows (`rows`, default
    benchmarks.rows.rows_from_samples). Registered by one entry point in the `harness.suites` group."""
    name: str
    world: str                        # "micro" | "real"
    tasks: tuple[str, ...]            # lmms-eval task names
    metrics: tuple[Metric, ...]
    primary: str
    version: str
    judged: bool = False              # needs a judge (MMHal, MM-Vet)
    description: str = ""
    rubric: str | None = None         # the judge's task for a judged suite: "mmhal" (0-6) or "mmvet" (0-1)
    # the lmms-eval include folder holding the tasks' YAML (a path, or a function that builds and returns it);
    # None = the tasks are lmms-eval's own
    include: Path | Callable[[], Path] | None = None
    rows: Callable[[str, list[dict]], list[dict]] | None = None   # (task, lmms-eval samples) -> sample rows

    def __post_init__(self):
        if self.judged and not self.rubric:
            raise ValueError(f"suite {self.name!r} is judged but names no rubric (e.g. rubric='mmhal')")

    def include_path(self) -> Path | None:
        return Path(self.include()) if callable(self.include) else self.include

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"suite {self.name!r} has no metric {name!r}")

    def compute(self, rows: Rows) -> dict[str, float]:
        return {m.name: m.compute(rows) for m in self.metrics}


def signed_gain(direction: str, base: float, new: float) -> float:
    """How much better `new` is than `base` (positive = better) under a declared direction."""
    if direction == "higher":
        return new - base
    if direction == "lower":
        return base - new
    if direction.startswith("target:"):
        t = float(direction.split(":", 1)[1])
        return abs(base - t) - abs(new - t)
    raise ValueError(f"unknown direction {direction!r}")


def arrow(direction: str) -> str:
    return {"higher": "↑", "lower": "↓"}.get(direction, f"→{direction.split(':', 1)[-1]}")
