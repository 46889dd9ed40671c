"""Engines for scale: data-parallel ranks (harness.parallel) and the vLLM generation engine (harness.engines).

Ranks are real processes joined by gloo on 127.0.0.1, launched the way torchrun does it (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT); the vLLM engine is exercised against fake OpenAI-compatible servers here
and against the real vLLM CPU build in the slow tier (docs/scaling.md says why and what it costs).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(world: int, argv: list[str], env: dict, timeout: float = 600) -> list[subprocess.CompletedProcess]:
    """`world` processes of `python argv...` ("{rank}" in an argument = the rank) with the environment torchrun
    gives its workers."""
    port = _free_port()
    procs = []
    for r in range(world):
        e = {**os.environ, **env, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
             "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen([sys.executable, *[a.replace("{rank}", str(r)) for a in argv]], env=e, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


# ------------------------------------------------------------------ batch splitting (no processes)

def test_dpo_batch_split_keeps_the_recipe_batch(monkeypatch):
    from harness import parallel
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parallel.split_batch(16, 1) == (8, 1)          # micro preset: 16 per step = 2 ranks x 8
    assert parallel.split_batch(1, 2) == (1, 1)           # real preset: 1 x accumulation 2 = 2 ranks x 1
    assert parallel.train_key() == {"world_size": 2}
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parallel.split_batch(4, 4) == (4, 1)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(HarnessError, match="3 processes do not divide the DPO batch of 16"):
        parallel.split_batch(16, 1)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert parallel.split_batch(16, 1) == (16, 1) and parallel.train_key() == {}


def test_world_size_that_does_not_divide_the_batch_is_refused_before_work(monkeypatch, tmp_path):
    from harness import api
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(HarnessError, match="do not divide the DPO batch"):
        api.prepare("rm-dpo", "2k", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_launcher_environment_is_checked(monkeypatch):
    from harness import parallel
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(HarnessError, match="MASTER_ADDR/MASTER_PORT are unset"):
        parallel.check_env()
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(HarnessError, match="RANK=2 is not a rank of WORLD_SIZE=2"):
        parallel.check_env()


# ------------------------------------------------------------------ 2 gloo ranks: sharded generation

def _tiny_llava(path: Path) -> Path:
    import torch

    from harness.zoo import architectures as A
    torch.manual_seed(0)
    A.build_llava(A.REDUCED, seed=3).save_pretrained(path)
    A.build_processor(A.REDUCED).save_pretrained(path)
    return path


def _images(n: int):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]


QUESTIONS = ["describe the image .", "is there a cat ?", "what color is the ball ?", "where is the dog ?",
             "how many cups ?"]


def rank_generate(model_dir: str, out: str, store: str) -> None:
    """Run in each rank: the lmms-eval adapter's sharded generation over 11 prompts in batches of 4, sampled."""
    from harness import lmms_adapter, parallel
    from harness.models.vlm import load_vlm
    parallel.init()
    model, processor = load_vlm(model_dir)
    lm = lmms_adapter.HarnessVLM(model=model, processor=processor, batch_size=4)
    lm.shard_batches = True
    with parallel.scratch(Path(store)):
        texts = lm._generate(_images(11), [QUESTIONS[i % 5] for i in range(11)], max_new_tokens=6,
                             batch_size=4, temperature=1.0)
    Path(out).write_text(json.dumps({"texts": texts, "device": str(lm.device)}))


def test_two_ranks_generate_exactly_what_one_process_generates(tmp_path):
    """Whole batches are shared out (same prompts per batch, same seed per batch): the merged answers are the
    one-process answers, sampled ones included; each rank computes only its own batches."""
    import torch

    from harness.models.vlm import generate, load_vlm
    torch.set_num_threads(1)
    model_dir = _tiny_llava(tmp_path / "llava")
    model, processor = load_vlm(str(model_dir))
    want = generate(model, processor, _images(11), [QUESTIONS[i % 5] for i in range(11)], max_new_tokens=6,
                    batch_size=4, temperature=1.0)
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_engines as t; "
            f"t.rank_generate({str(model_dir)!r}, sys.argv[1], {str(tmp_path / 'store')!r})")
    procs = _launch(2, ["-c", code, str(tmp_path / "rank{rank}.json")], {"OMP_NUM_THREADS": "1"}, timeout=300)
    assert all(p.returncode == 0 for p in procs), [p.stderr[-2000:] for p in procs]
    for r in range(2):
        got = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert got["texts"] == want
        assert got["device"] == "cpu"
    stored = sorted(f.name for f in (tmp_path / "store" / "eval-1").iterdir())
    assert stored == ["unit-0.json", "unit-1.json", "unit-2.json"]     # 3 batches, each computed once
