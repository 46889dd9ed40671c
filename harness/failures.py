"""What a run leaves behind when it fails (exit 3, harness/errors.py): the evidence stays in the run directory.

- `run.log`: the console's messages of every invocation in that directory, as plain text (appended);
- `error.log`: the failed invocation's full traceback, cause chain included (an lmms-eval error keeps its own);
- `record.json` with `status: "error"` and `error: {stage, message, log}`. A re-run in the same directory
  resumes: finished stages are cached (harness/stages.py) and an error record is never taken for a finished run.

Bad input never gets here: it is refused (HarnessError, exit 2) before the run directory is touched.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Self

from rich.markup import escape

from harness.errors import HarnessError, RunFailed
from harness.io import disk_full, disk_full_path, write_text
from harness.record import RunRecord, now_iso

RUN_LOG = "run.log"
ERROR_LOG = "error.log"


class RunConsole:
    """The rich console on stderr, with each message also appended to the run directory's run.log."""

    def __init__(self, screen, log_path: Path | None = None):
        self.screen, self.log_path = screen, log_path

    def print(self, *objects, **kwargs) -> None:
        self.screen.print(*objects, **kwargs)
        self._to_log(lambda c: c.print(*objects, **kwargs))

    def rule(self, *objects, **kwargs) -> None:
        self.screen.rule(*objects, **kwargs)
        self._to_log(lambda c: c.rule(*objects, **kwargs))

    def log_line(self, text: str) -> None:
        """A line for run.log only (each invocation's header: time, command, commit)."""
        self._to_log(lambda c: c.print(text, markup=False))

    def _to_log(self, draw: Callable) -> None:
        if self.log_path is None:
            return
        from rich.console import Console
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                draw(Console(file=f, width=120, no_color=True, highlight=False, force_terminal=False,
                             soft_wrap=True))
        except OSError:
            pass                # a log that cannot be written (a full disk) must not hide the real failure


def describe(exc: BaseException) -> str:
    """One line saying what failed: a full disk says so whatever library wrapped the OSError."""
    full = disk_full_path(exc)
    if full is not None and not isinstance(exc, RunFailed):
        return disk_full(full or "the run directory").message
    if isinstance(exc, RunFailed):
        return exc.message
    if isinstance(exc, HarnessError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class record_failures:
    """`with record_failures(run_dir, make_record, console) as at: at.stage = "train"; ...`

    Any exception (not KeyboardInterrupt) escaping the block becomes RunFailed(stage, message) raised from the
    original, after error.log and an error record.json are written. `make_record()` gives the record to fill in
    (config, command, provenance)."""

    def __init__(self, run_dir: Path, make_record: Callable[[], RunRecord], console: RunConsole | None = None):
        self.run_dir, self.make_record, self.console = Path(run_dir), make_record, console
        self.stage = "setup"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        failed = exc if isinstance(exc, RunFailed) else RunFailed(describe(exc), self.stage)
        failed.stage = failed.stage or self.stage
        failed.log = self._leave_evidence(exc, failed)
        if failed is exc:
            return False
        raise failed from exc

    def _leave_evidence(self, exc: BaseException, failed: RunFailed) -> str | None:
        log = self.run_dir / ERROR_LOG
        text = (f"{now_iso()} stage {failed.stage} failed: {failed.message}\n\n"
                + "".join(traceback.format_exception(exc)))
        lost = []               # (a full disk) the evidence that could not be written; the message still goes out
        try:
            write_text(log, text)
        except Exception as e:  # noqa: BLE001
            log = None
            lost.append(f"{ERROR_LOG} ({describe(e)})")
        try:
            rec = self.make_record()
            rec.status = "error"
            rec.error = {"stage": failed.stage, "message": failed.message, "log": ERROR_LOG if log else ""}
            rec.save(self.run_dir / "record.json")
        except Exception as e:  # noqa: BLE001
            lost.append(f"record.json ({describe(e)})")
        if self.console is not None:
            self.console.print(f"[red]{failed.stage} failed:[/] {escape(failed.message)}")
            if lost:
                self.console.print(f"[red]not written:[/] {escape('; '.join(lost))}")
        return str(log) if log else None
