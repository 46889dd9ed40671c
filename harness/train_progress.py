"""A clean terminal while training: one rich progress line (step, loss, reward margin, accuracy) instead of TRL's
printed per-step dicts, and no transformers / datasets progress bars while models load and datasets tokenize.

Nothing is lost: every logged step goes, as one JSON line, to the training log file (`train.log` beside the
adapter; train_log.json keeps the same history), and the last line is printed when training ends.
`report_to` passes TRL's experiment trackers through (tensorboard, wandb, trackio); off by default.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import warnings
from pathlib import Path

from harness.errors import HarnessError

TRACKERS = ("tensorboard", "wandb", "trackio")
SHOWN = (("loss", "loss"), ("rewards/margins", "margin"), ("rewards/accuracies", "acc"))


def check_report_to(report_to: list[str], out_dir: str | Path | None = None) -> list[str] | str:
    """The value for TrainingArguments.report_to: 'none' when empty; an unknown or uninstalled tracker is bad
    input (no transformers import here: the config check calls it). TensorBoard writes under out_dir/tensorboard
    unless TENSORBOARD_LOGGING_DIR says otherwise (the trainer's own folder is deleted after training)."""
    unknown = [r for r in report_to if r not in TRACKERS]
    if unknown:
        raise HarnessError(f"train.report_to: unknown tracker(s) {unknown} (choose from {', '.join(TRACKERS)})")
    missing = [r for r in report_to if importlib.util.find_spec(r) is None]
    if missing:
        raise HarnessError(f"train.report_to names {missing}, which is not installed (pip install {' '.join(missing)})")
    if out_dir is not None and "tensorboard" in report_to:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(Path(out_dir) / "tensorboard"))
    return list(report_to) or "none"


def quiet_model_loading() -> None:
    """For the whole process (`harness run/synth/train/eval`): transformers' "Loading weights" bars (which also
    switches huggingface_hub's download bars off) and datasets' map/filter bars; the rich bars are the progress.
    Also through the environment, which worker processes (parallel responders, reward scoring) inherit and read
    when they import transformers / datasets."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    # PEFT 0.21 reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model (training,
    # merging, loading an adapter): a library-internal deprecation that no setting of ours can avoid
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


@contextlib.contextmanager
def quiet_loading():
    """transformers' "Loading weights" bars and datasets' map/filter bars off for the block, then as they were."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_was, ds_was = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if hf_was:
            hf_logging.enable_progress_bar()
        if ds_was:
            datasets.enable_progress_bars()


class RichTrainProgress:
    """Replaces TRL's PrinterCallback: a rich progress bar on stderr, each step's logs appended to `log_path`.
    (Made a transformers.TrainerCallback by `attach`, so importing this module does not import transformers.)"""

    def __init__(self, log_path: str | Path, label: str = "train", show: bool = True):
        self.log_path, self.label, self.show = Path(log_path), label, show
        self.progress = self.task = None
        self.last: dict = {}
        self._showwarning = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("", encoding="utf-8")
        # library warnings raised while training go to the log, not between the progress lines
        self._showwarning, warnings.showwarning = warnings.showwarning, self._log_warning
        if self.show and state.is_world_process_zero:
            from rich.console import Console
            from rich.progress import TextColumn

            from harness.stages import bar_display
            self.progress = bar_display(TextColumn("{task.fields[stats]}"), console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task(f"train {self.label}", total=state.max_steps, stats="")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": state.global_step, **logs}, sort_keys=True, default=float) + "\n")
        if any(k in logs for k, _ in SHOWN):
            self.last = logs
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, stats=self.stats_text())

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def _log_warning(self, message, category, filename, lineno, file=None, line=None):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"warning": f"{category.__name__}: {message}", "at": f"{filename}:{lineno}"}) + "\n")

    def on_train_end(self, args, state, control, **kwargs):
        if self._showwarning is not None:
            warnings.showwarning, self._showwarning = self._showwarning, None
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, stats=self.stats_text())
            self.progress.stop()
            self.progress = None

    def stats_text(self) -> str:
        return "  ".join(f"{name} {self.last[k]:.3f}" for k, name in SHOWN if isinstance(self.last.get(k), (int, float)))


def attach(trainer, log_path: str | Path, label: str):
    """Swap the trainer's printer / tqdm callbacks for RichTrainProgress (the display is off with HARNESS_QUIET;
    the log file is always written)."""
    if not hasattr(trainer, "add_callback"):      # a stand-in trainer (tests) has no callbacks to swap
        return None
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    cls = type("RichTrainerProgress", (RichTrainProgress, TrainerCallback), {})
    cb = cls(log_path, label, show=not os.environ.get("HARNESS_QUIET"))
    trainer.add_callback(cb)
    return cb
