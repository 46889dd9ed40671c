"""The harness's failure taxonomy; each type has its own exit code (harness/cli.py, README "Exit codes").

- HarnessError (exit 2): bad input, refused before any work (unknown key, malformed size, unwritable --out, ...).
- RunFailed (exit 3): the run itself failed after work started (a non-finite loss, an lmms-eval exception, a
  full disk). The run directory keeps the full traceback (error.log) and a record.json with status "error".
- RegressionFound (exit 1): the gate found a regression.
"""


class HarnessError(Exception):
    """Bad input or an unusable artefact (unknown key, corrupt zoo file, unknown method, ...)."""

    exit_code = 2


class RunFailed(Exception):
    """A run that was accepted and started, then failed. `stage` names where (synth, train, eval-base, ...);
    the original exception stays reachable as __cause__ so error.log shows the whole chain."""

    exit_code = 3

    def __init__(self, message: str, stage: str | None = None, log: str | None = None):
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.log = log              # the run directory's error.log, once written

    def __str__(self) -> str:
        where = f"stage {self.stage}: " if self.stage else ""
        return where + self.message


class RegressionFound(Exception):
    """Raised by the gate when a gated metric regressed (exit code 1)."""

    exit_code = 1
