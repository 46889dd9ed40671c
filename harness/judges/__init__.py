"""Judges for MMHal (0-6 rubric) and MM-Vet (0-1 correctness).

A judge scores sample rows in place: `score` (float) or, when the judgement failed, `score: None` +
`judge_failed: True` + `judge_error`. Failed judgements are counted and reported, never scored 0 (the official
MMHal script turns an unparseable rating into 0 and lmms-eval's MM-Vet silently scores 0 when the judge fails;
both bias the score towards "hallucinating"). A judge that fails on every item is down: HarnessError.
Registry names (harness.registry.JUDGES): "rule" (micro world, ground truth) and "openai" (any
OpenAI-compatible endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import HarnessError

TASKS = ("mmhal", "mmvet")
DOWN_AFTER = 3      # the first 3 judgements all failed: the judge is down, stop instead of failing every item


@dataclass
class Judgement:
    score: float | None          # MMHal 0-6, MM-Vet 0-1; None = failed
    raw: str = ""                # the judge's reply (or the rule's reasoning)
    error: str | None = None


class Judge:
    name = "judge"
    model = ""
    version = "1"

    def judge(self, task: str, row: dict) -> Judgement:    # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict:
        """What the record keeps about the judge (never a key)."""
        return {"name": self.name, "model": self.model, "version": self.version}

    def judge_rows(self, task: str, rows: list[dict],
                   progress: Callable[[int], None] | None = None) -> int:
        """Score `rows` in place; -> number of failed judgements. Raises HarnessError when all failed."""
        if task not in TASKS:
            raise HarnessError(f"judge task must be one of {TASKS}, got {task!r}")
        failures, first_error = 0, None
        for i, row in enumerate(rows):
            if i == DOWN_AFTER and failures == DOWN_AFTER:
                raise HarnessError(f"judge {self.name!r} failed on the first {DOWN_AFTER} {task} items "
                                   f"(is it down?): {first_error}")
            j = self.judge(task, row)
            ok = j.error is None and j.score is not None
            row["score"] = float(j.score) if ok else None
            row["judge_failed"] = not ok
            row["judge_raw"] = j.raw
            if not ok:
                failures += 1
                row["judge_error"] = j.error or "no score"
                first_error = first_error or row["judge_error"]
            if progress is not None:
                progress(i + 1)
        if rows and failures == len(rows):
            raise HarnessError(f"judge {self.name!r} failed on all {len(rows)} {task} items "
                               f"(is it down?): {first_error}")
        return failures


def load_judge(name: str, **kwargs) -> Judge:
    from harness.registry import load

    cls = load("judges", name)
    return cls(**kwargs)
