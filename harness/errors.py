"""One error type for bad input: the CLI prints its message once and exits 2."""


class HarnessError(Exception):
    """Bad input or an unusable artefact (unknown key, corrupt zoo file, unknown method, ...)."""

    exit_code = 2


class RegressionFound(Exception):
    """Raised by the gate when a gated metric regressed (exit code 1)."""

    exit_code = 1
