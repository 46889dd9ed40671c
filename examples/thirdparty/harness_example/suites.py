"""example-color: "what color is this image?" on solid-colour images (a worked example of a suite).

A new suite is its lmms-eval task folder (tasks/: the task YAML, its hooks and data) and this declaration. Its
rows come from the harness's generic rows builder (prediction, target and the per-sample values the task logs).
"""

from pathlib import Path

from benchmarks.suites import DEGENERATE
from harness.suite import Metric, Suite


def accuracy(rows) -> float:
    return sum(r["names_color"] for r in rows) / len(rows)


COLOR = Suite("example-color", "micro", ("example_color",),
              (Metric("accuracy", "higher", accuracy, test="mcnemar", item_key="names_color",
                      description="answers that name the image's colour"), DEGENERATE),
              primary="accuracy", version="1", include=Path(__file__).parent / "tasks",
              description="6 solid-colour images, 'what color is this image ?'")
