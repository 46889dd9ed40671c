"""Where a model name points, which device and dtype it runs on, and whether it loaded completely.

A model name is, in this order: a zoo name ("micro-llava"), an existing local directory, or a hub id
("llava-hf/llava-1.5-7b-hf") resolved the way transformers resolves it — the local HF cache first, a download
on a connected machine, nothing but the cache when `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`) is set.
Only safetensors weights and text files are fetched (no pickled weights; code files only for a model whose
remote code the preset allows). No torch import at module level: `harness run --dry-run` resolves names too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.errors import HarnessError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# what a checkpoint needs besides its weights: configs, tokenizers, processors, chat templates
TEXT_FILES = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


def offline() -> bool:
    """The hub's own offline switches (huggingface_hub reads HF_HUB_OFFLINE, transformers TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def is_hub_id(name: str) -> bool:
    return bool(HUB_ID.match(name)) and not Path(name).expanduser().exists()


def resolve(name_or_path: str | os.PathLike, remote_code: bool = False) -> Path:
    """Zoo name -> its verified directory; local directory -> itself; hub id -> its snapshot in the HF cache.

    `remote_code`: also fetch the repository's *.py files (a model loaded with trust_remote_code)."""
    name = str(name_or_path)
    from harness.zoo.store import ZOO_NAMES, resolve_model
    if name in ZOO_NAMES or Path(name).expanduser().exists():
        return Path(resolve_model(name))
    if not is_hub_id(name):
        raise HarnessError(f"unknown model {name!r}: not a zoo name ({', '.join(ZOO_NAMES)}), no such local "
                           "directory, and not a hub id (owner/name)")
    return _snapshot(name, remote_code)


def _snapshot(repo_id: str, remote_code: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = ["*.safetensors", *TEXT_FILES] + (["*.py"] if remote_code else [])
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=offline()))
    except LocalEntryNotFoundError:
        how = ("offline (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE set)" if offline()
               else "the hub is unreachable")
        raise HarnessError(f"model {repo_id!r} is not in the local HF cache and {how}: download it on a connected "
                           f"machine (`hf download {repo_id}`) or pass a local directory") from None
    except RepositoryNotFoundError:
        raise HarnessError(f"model {repo_id!r}: no such repository on the hub (or it is gated: `hf auth login`)") \
            from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise HarnessError(f"model {repo_id!r}: download failed: {e}") from None
    if not (path / "config.json").is_file() and not (path / "model_index.json").is_file():
        raise HarnessError(f"model {repo_id!r}: the snapshot at {path} has no config.json (nothing loadable)")
    return path


def auto_device(requested: str | None = None) -> str:
    """"cuda" when a GPU is visible, else "cpu"; an explicit request wins (and is checked)."""
    import torch
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise HarnessError(f"device {requested!r} requested but no CUDA GPU is visible (leave it empty: auto)")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def auto_dtype(device: str, requested: str | None = None):
    """bfloat16 on a GPU (the paper's bf16), float32 on the CPU (bf16 matmuls there are slow and lossy)."""
    import torch
    if requested and requested != "auto":
        if not isinstance(getattr(torch, requested, None), torch.dtype):
            raise HarnessError(f"unknown dtype {requested!r} (float32, bfloat16, float16 or auto)")
        return getattr(torch, requested)
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def check_loading_info(info: dict, what: str) -> None:
    """A model whose weights were partly newly initialised (missing from the checkpoint or of the wrong shape)
    would run on random numbers: refuse it, naming the keys."""
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in (info.get("mismatched_keys") or []))
    if missing or mismatched:
        keys = missing + mismatched
        shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
        raise HarnessError(f"{what}: loading would leave weights newly initialised (random): {shown}. "
                           "The checkpoint does not match the class it is loaded as (for a reward model with "
                           "its own model code, allow it with trust_remote_code: true in the preset)")
