"""harness: align multimodal LLMs with synthetic preference data, and measure it honestly.

Importing this package is cheap: no torch, no transformers, no lmms-eval. Heavy modules are imported
lazily by the stages that need them, so `harness ls`, `harness leaderboard` and `harness gate` stay light.
"""

__version__ = "0.1.0"

from harness.errors import HarnessError  # noqa: E402

__all__ = ["HarnessError", "__version__"]
