"""Shared fixtures. Tiny models are built from configs; nothing is loaded from a hub."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def reduced_zoo(tmp_path_factory):
    """A reduced micro zoo built end to end once per test session; HARNESS_ZOO_DIR points at it."""
    import torch

    from harness.zoo.build import build_zoo

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("zoo")
    build_zoo(seed=0, out=str(out), reduced=True)
    old = os.environ.get("HARNESS_ZOO_DIR")
    os.environ["HARNESS_ZOO_DIR"] = str(out)
    yield out
    if old is None:
        os.environ.pop("HARNESS_ZOO_DIR", None)
    else:
        os.environ["HARNESS_ZOO_DIR"] = old
