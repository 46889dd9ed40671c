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
    (store,) = (tmp_path / "store").glob("eval-*")          # one store, named by the call's content
    stored = sorted(f.name for f in store.iterdir())
    assert stored == ["unit-0.json", "unit-1.json", "unit-2.json"]     # 3 batches, each computed once


# ------------------------------------------------------------------ 2 gloo ranks: whole commands (slow tier)
# Each command starts 2 + 1 Python processes that import torch, transformers and lmms-eval: ~60-120 s on the
# shared 2-core machine, so these are in the slow tier (`pytest -m slow tests/test_engines.py`).

TINY = ["synth.responders.max_new_tokens=12", "synth.responders.batch_size=4", "synth.select.require_well_formed=false",
        "train.max_steps=1", "train.batch_size=4", "train.warmup_ratio=0.0", "eval.limit=8", "eval.batch_size=4",
        "round_size=1.0", "synth.responders.workers=1", "synth.response_reward.workers=1"]


@pytest.fixture()
def cli_env(tmp_path):
    sys.path.insert(0, str(TESTS))
    from test_run import _random_zoo
    zoo = _random_zoo(tmp_path / "zoo")
    return {"HARNESS_ZOO_DIR": str(zoo), "HARNESS_QUIET": "1", "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _one_process(argv: list[str], env: dict, cache: Path) -> subprocess.CompletedProcess:
    e = {**os.environ, **env, "HARNESS_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(k, None)
    return subprocess.run([sys.executable, "-m", "harness.cli", *argv], env=e, capture_output=True, text=True,
                          timeout=900)


def _stage_dirs(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "stages").iterdir() if not p.name.startswith("."))


@pytest.mark.slow
def test_two_process_run_merges_into_the_one_process_dataset_and_samples(tmp_path, cli_env):
    """`torchrun --nproc_per_node 2 -m harness.cli run ...`: the same preference dataset, the same base samples
    and the same synthesis stage keys as one process; training runs DDP under its own key (world size named)."""
    args = ["run", "--method", "rm-dpo", "--size", "6", "--suites", "micro-chair,micro-pope", *TINY]
    one = _one_process([*args, "--out", str(tmp_path / "one")], cli_env, tmp_path / "c1")
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch(2, ["-m", "harness.cli", *args, "--out", str(tmp_path / "two")],
                  {**cli_env, "HARNESS_CACHE_DIR": str(tmp_path / "c2")}, timeout=900)
    assert [p.returncode for p in two] == [0, 0], [p.stderr[-3000:] for p in two]
    a, b = tmp_path / "one", tmp_path / "two"
    synth = [d for d in _stage_dirs(a) if d.startswith("synth-")]
    assert synth and synth == [d for d in _stage_dirs(b) if d.startswith("synth-")]
    for arrow in sorted((a / "dataset").glob("*.arrow")):
        assert arrow.read_bytes() == (b / "dataset" / arrow.name).read_bytes()
    for suite in ("micro-chair", "micro-pope"):
        assert (a / "samples/base" / f"{suite}.jsonl").read_bytes() == \
            (b / "samples/base" / f"{suite}.jsonl").read_bytes()
    train = {d for d in _stage_dirs(b) if d.startswith("train-")} - {"train-parts"}
    assert train and train.isdisjoint(_stage_dirs(a))          # DDP is not bit-identical: its own key
    assert json.loads((b / "record.json").read_text())["kind"] == "run"


@pytest.mark.slow
def test_a_dead_rank_fails_the_run_with_exit_3_and_the_rerun_resumes(tmp_path, cli_env):
    """Rank 1 is killed once it has stored a finished batch: rank 0 stops with exit 3 (no hang, no traceback);
    a one-process re-run reuses the stored batches and builds exactly the uninterrupted dataset."""
    import signal
    import time
    args = ["synth", "--method", "rm-dpo", "--size", "6", *TINY]
    ref = _one_process([*args, "--out", str(tmp_path / "ref")], cli_env, tmp_path / "c0")
    assert ref.returncode == 0, ref.stderr[-3000:]
    run = tmp_path / "run"
    port = _free_port()
    procs = []
    for r in range(2):
        e = {**os.environ, **cli_env, "HARNESS_CACHE_DIR": str(tmp_path / "c1"), "PYTHONPATH": str(ROOT),
             "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--out", str(run)], env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + 600
    while time.time() < deadline and not list(run.glob("stages/**/responses/unit-*.json")):
        assert procs[0].poll() is None and procs[1].poll() is None, "a rank ended before any batch was stored"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    _, err0 = procs[0].communicate(timeout=600)
    procs[1].communicate(timeout=60)
    assert procs[0].returncode == 3, err0[-3000:]
    assert "another rank failed" in err0 and "Traceback" not in err0
    stored = list(run.glob("stages/**/responses/unit-*.json"))
    assert stored
    again = _one_process([*args, "--out", str(run)], cli_env, tmp_path / "c1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"reused {len(stored)} of" in again.stderr
    for arrow in sorted((tmp_path / "ref" / "dataset").glob("*.arrow")):
        assert arrow.read_bytes() == (run / "dataset" / arrow.name).read_bytes()


# ------------------------------------------------------------------ the vLLM engine against fake servers

def test_engine_keys_are_checked_at_config_time(tmp_path):
    from harness import api
    from harness.engines import check_engine
    assert check_engine("vllm:http://127.0.0.1:9/v1", "k") == "vllm:http://127.0.0.1:9/v1"
    for bad in ("tgi", "hf:http://x", "vllm:127.0.0.1:8000"):
        with pytest.raises(HarnessError, match="use hf, vllm"):
            check_engine(bad, "eval.engine")
    with pytest.raises(HarnessError, match="synth.responders.engine='sglang'"):
        api.prepare("rm-dpo", "2k", out=tmp_path / "r", overrides=["synth.responders.engine=sglang"])
    with pytest.raises(HarnessError, match="eval.engine='vllm:nowhere'"):
        api.prepare("rm-dpo", "2k", out=tmp_path / "r", overrides=["eval.engine=vllm:nowhere"])
    # a running server serves one model: not for several responders, nor for base + aligned in one run
    with pytest.raises(HarnessError, match="a running server serves one model, and the responders are 3"):
        api.prepare("rm-dpo", "2k", out=tmp_path / "r", overrides=["synth.responders.engine=vllm:http://h:1/v1"])
    with pytest.raises(HarnessError, match="harness run evaluates two checkpoints"):
        api.prepare("rm-dpo", "2k", out=tmp_path / "r", overrides=["eval.engine=vllm:http://h:1/v1"])


def _fake_python(tmp_path: Path, body: str) -> str:
    """A stand-in for .venv-vllm/bin/python: a shell script that does `body` whatever it is asked."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_a_server_that_never_listens_fails_within_the_bounded_wait(tmp_path, monkeypatch):
    import time

    from harness.engines.vllm import Server
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, "echo loading the model; exec sleep 300"))
    srv = Server(tmp_path, timeout=2.0, log=tmp_path / "server.log")
    t0 = time.monotonic()
    with pytest.raises(HarnessError, match=r"did not answer on http://127\.0\.0\.1:\d+/v1 within 2 s") as e:
        srv.__enter__()
    assert time.monotonic() - t0 < 15
    assert "loading the model" in str(e.value)               # the end of the server's log
    assert srv.proc.poll() is not None                        # and the server was stopped


def test_a_server_that_exits_is_reported_with_its_log(tmp_path, monkeypatch):
    from harness.engines.vllm import Server
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, "echo 'ValueError: bad model' >&2; exit 7"))
    with pytest.raises(HarnessError, match=r"exited with code 7 before it answered(.|\n)*ValueError: bad model"):
        with Server(tmp_path, timeout=30, log=tmp_path / "server.log"):
            pass
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(HarnessError, match="scripts/vllm-env.sh"):
        with Server(tmp_path, timeout=1):
            pass


class _FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 that answers with what it was asked (to check the requests)."""

    def __init__(self):
        from fake_openai import FakeOpenAI, chat_reply
        seen = self.seen = []

        def answer(path, headers, body):
            seen.append(body)
            parts = body["messages"][0]["content"]
            return chat_reply(f" {parts[0]['type']}>{parts[1]['type']} {parts[1]['text']} seed={body.get('seed')} "
                              f"T={body['temperature']} max={body['max_tokens']} model={body['model']} ")
        self.server = FakeOpenAI(answer, served="served-llava")
        self.url = self.server.url

    def close(self):
        self.server.close()


def test_responders_through_a_running_server_keep_order_and_per_item_seeds(tmp_path):
    """engine=vllm:URL: the same prompt layout (image, then text), answers back in input order, every item
    sampled with its own seed (the same whatever the batch size), stripped like the HF path's."""
    from pipelines.synth.responders import RespondersConfig, respond
    fake = _FakeOpenAI()
    try:
        paths = []
        for i, im in enumerate(_images(5)):
            paths.append(str(tmp_path / f"{i}.png"))
            im.save(paths[-1])
        questions = ["b ?", "a ?", "c ?", "a ?", "b ?"]
        runs = []
        for bs in (2, 5):
            cfg = RespondersConfig(models=["policy"], samples_per_model=1, temperature=1.0, max_new_tokens=7,
                                   batch_size=bs, engine=f"vllm:{fake.url}")
            runs.append(respond(cfg, paths, questions, policy="micro-llava", seed=0))
    finally:
        fake.close()
    texts = [[r[0]["text"] for r in run] for run in runs]
    assert texts[0] == texts[1]                               # batch size changes nothing
    order = sorted(range(5), key=lambda i: (questions[i], i))  # the sorted order the seeds follow
    for pos, i in enumerate(order):
        assert texts[0][i] == f"image_url>text {questions[i]} seed={pos} T=1.0 max=7 model=served-llava"
    assert len(fake.seen) == 10


def test_lmms_adapter_generates_through_the_engine(tmp_path):
    from harness.lmms_adapter import HarnessVLM
    fake = _FakeOpenAI()
    try:
        lm = HarnessVLM(engine=(fake.url, "served-llava"), batch_size=4)
        lm.shard_batches = True
        texts = lm._generate(_images(3), ["x ?", "y ?", "z ?"], max_new_tokens=5, batch_size=4, temperature=0.0)
    finally:
        fake.close()
    assert texts == [f"image_url>text {q} seed=None T=0.0 max=5 model=served-llava" for q in ("x ?", "y ?", "z ?")]
    assert str(lm.device) == "cpu"


def test_served_checkpoint_has_vllm_vision_keys(tmp_path):
    from safetensors import safe_open

    from harness.engines.vllm import prepare_checkpoint, rename_vision_keys
    src = _tiny_llava(tmp_path / "llava")
    out = prepare_checkpoint(str(src), None, tmp_path / "served")
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    with safe_open(str(src / "model.safetensors"), "pt") as f:
        before = list(f.keys())
    vision = [k for k in before if k.startswith("vision_tower.")]
    assert vision and all(k.startswith("vision_tower.vision_model.") for k in keys if k.startswith("vision_tower."))
    assert len(keys) == len(before) and (out / "config.json").is_file()
    assert rename_vision_keys({"vision_tower.vision_model.a": 1})[1] == 0     # idempotent


def _attention(w: dict, layer: str, x, head: int, rotary: int, cos, sin):
    """One layer's causal self-attention as vLLM computes it: RoPE (neox halves) on the first `rotary` dims of
    each head, the rest passed through, scores scaled by head^-1/2."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    def heads(name):
        return (x @ w[f"{layer}.{name}.weight"].T).reshape(x.shape[0], -1, head).transpose(0, 1)    # [H, T, head]
    q, k, v = heads("q_proj"), heads("k_proj"), heads("v_proj")
    qr, kr = apply_rotary_pos_emb(q[..., :rotary], k[..., :rotary], cos, sin, unsqueeze_dim=0)
    q, k = torch.cat([qr, q[..., rotary:]], -1), torch.cat([kr, k[..., rotary:]], -1)
    out = sdpa(q, k, v, is_causal=True, scale=head ** -0.5).transpose(0, 1).reshape(x.shape[0], -1)
    return out @ w[f"{layer}.o_proj.weight"].T


@pytest.mark.parametrize("name", ["micro-responder-a", "micro-responder-b"])
def test_padded_heads_attend_exactly_as_the_original(tmp_path, name):
    """The micro responders' head sizes (16, 24) have no vLLM CPU kernel: the served copy pads them to 32. Its
    attention, computed from the served config the way vLLM reads it (head_dim, partial_rotary_factor), equals
    the original's in every layer; its vision tower is untouched."""
    import torch
    from safetensors.torch import load_file

    from harness.engines.vllm import prepare_checkpoint
    from harness.models.vlm import resolve_checkpoint
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    src = Path(resolve_checkpoint(name))
    text = json.loads((src / "config.json").read_text())["text_config"]
    out = prepare_checkpoint(name, None, tmp_path / "served")
    served = json.loads((out / "config.json").read_text())["text_config"]
    d, big = text["head_dim"], served["head_dim"]
    rotary = int(big * served["rope_parameters"]["partial_rotary_factor"])
    assert d in (16, 24) and big == 32 and rotary == d
    before, after = load_file(str(src / "model.safetensors")), load_file(str(out / "model.safetensors"))
    torch.manual_seed(0)
    x = torch.randn(12, text["hidden_size"])
    cos, sin = (t[0] for t in LlamaRotaryEmbedding(LlamaConfig(**text))(x, torch.arange(12)[None]))   # the original RoPE
    layers = sorted({k.rsplit(".", 2)[0] for k in before if ".self_attn." in k and "vision" not in k})
    assert len(layers) == text["num_hidden_layers"]
    for layer in layers:
        want = _attention(before, layer, x, d, d, cos, sin)
        got = _attention(after, layer, x, big, rotary, cos, sin)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4), (layer, (got - want).abs().max())
    vision = [k for k in before if k.startswith("vision_tower.")]
    assert all(torch.equal(before[k], after["vision_tower.vision_model." + k[len("vision_tower."):]])
               for k in vision)


@pytest.mark.parametrize("text, served", [
    ({"head_dim": 128}, 128),                                               # a real LLaVA: kernels exist
    ({"head_dim": 16}, 32), ({"hidden_size": 96, "num_attention_heads": 4}, 32),   # the micro responders
    ({"head_dim": 48}, 64),
    ({"head_dim": 16, "rope_parameters": {"rope_type": "yarn", "factor": 2.0}}, 16),   # cannot pad: as is
    ({"head_dim": 16, "rope_parameters": {"partial_rotary_factor": 0.5}}, 16)])
def test_served_head_size(text, served):
    from harness.engines.vllm import padded_head_size
    assert padded_head_size(text)[1] == served


def test_served_aligned_checkpoint_has_the_adapter_merged(tmp_path):
    """An aligned checkpoint is served as base + LoRA merged (language-model targets only), vision keys renamed."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file

    from harness.engines.vllm import prepare_checkpoint
    from harness.models.vlm import load_vlm
    from pipelines.dpo import LM_LINEAR
    src = _tiny_llava(tmp_path / "llava")
    model, _ = load_vlm(str(src))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=LM_LINEAR, init_lora_weights=False))
    peft.save_pretrained(str(tmp_path / "adapter"), safe_serialization=True)
    out = prepare_checkpoint(str(src), str(tmp_path / "adapter"), tmp_path / "served")
    merged, base = load_file(str(out / "model.safetensors")), load_file(str(src / "model.safetensors"))
    changed = [k for k in base if k in merged and not torch.equal(base[k], merged[k])]
    assert changed and all("language_model" in k and "proj" in k for k in changed)
    assert not any("lora" in k for k in merged)
    assert any(k.startswith("vision_tower.vision_model.") for k in merged)


# ------------------------------------------------------------------ the real vLLM CPU build (slow tier)
# Needs .venv-vllm (bash scripts/vllm-env.sh: ~2.1 GB, not part of setup.sh); one server start took 60-360 s on
# the shared 2-core machine (torch.compile warm-up), so this is opt-in: pytest -m slow tests/test_engines.py -k vllm

VLLM_PY = ROOT / ".venv-vllm" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PY.exists() and not os.environ.get("HARNESS_VLLM_PYTHON"),
                    reason="no .venv-vllm (bash scripts/vllm-env.sh)")
@pytest.mark.parametrize("engine, process", [("vllm", "vllm.entrypoints.openai.api_server"),
                                             ("vllm-batch", "vllm_batch_worker")])
def test_vllm_engines_answer_micro_pope_like_hf(tmp_path, engine, process):
    """`harness eval --engine vllm` (a server) and `--engine vllm-batch` (an offline worker) on the micro-llava
    checkpoint with the real vLLM CPU build: started and stopped by the harness (one start: ~80 s on the shared
    2-core machine), greedy answers the HF engine's, item for item."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache"), "HARNESS_QUIET": "1",
           "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("HARNESS_ZOO_DIR", None)          # the committed micro zoo
    rows = {}
    for name in ("hf", engine):
        p = subprocess.run([sys.executable, "-m", "harness.cli", "eval", "--model", "micro-llava", "--suites",
                            "micro-pope", "--limit", "32", "--out", str(tmp_path / name), "--engine", name],
                           env=env, capture_output=True, text=True, timeout=1500)
        assert p.returncode == 0, p.stderr[-3000:]
        rows[name] = [json.loads(line)["prediction"] for line in
                      (tmp_path / name / "samples/base/micro-pope.jsonl").read_text().splitlines()]
    assert len(rows["hf"]) == 32 and rows[engine] == rows["hf"]
    ps = subprocess.run(["pgrep", "-af", process], capture_output=True, text=True)   # -a: the command lines
    assert str(tmp_path) not in ps.stdout                     # the server / worker was stopped


@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PY.exists() and not os.environ.get("HARNESS_VLLM_PYTHON"),
                    reason="no .venv-vllm (bash scripts/vllm-env.sh)")
def test_vllm_batch_responders_answer_like_hf(tmp_path, monkeypatch):
    """The micro responders (head sizes 16 and 24, served padded) through the real offline engine: greedy answers
    to micro-CHAIR prompts are the HF engine's, item for item (one engine start per model: ~60 s each here)."""
    from benchmarks.micro_data import build_micro_tasks
    from pipelines.synth.responders import RespondersConfig, respond
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    root = build_micro_tasks()
    docs = [json.loads(line) for line in (root / "data" / "chair.jsonl").read_text().splitlines()][:24]
    paths, questions = [str(root / d["image"]) for d in docs], [d["question"] for d in docs]
    answers = {}
    for engine in ("hf", "vllm-batch"):
        cfg = RespondersConfig(models=["micro-responder-a", "micro-responder-b"], samples_per_model=1,
                               temperature=0.0, max_new_tokens=40, batch_size=16, engine=engine)
        answers[engine] = [[r["text"] for r in rs] for rs in respond(cfg, paths, questions, policy="micro-llava",
                                                                     seed=0)]
    assert len(answers["hf"]) == 24 and all(a and b for a, b in answers["hf"])
    assert answers["vllm-batch"] == answers["hf"]


_SERVER_PARENT = """
import sys, threading, time
sys.path.insert(0, {root!r})
from harness.engines.vllm import Server
srv = Server({tmp!r}, timeout=300, log={log!r})
threading.Thread(target=srv.__enter__, daemon=True).start()
while srv.proc is None:
    time.sleep(0.05)
print(srv.proc.pid, flush=True)
time.sleep(300)
"""


def _group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()     # after "pid (comm)": state ppid pgrp ...
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.mark.parametrize("engine", ["harness.engines.vllm import Server", "harness.engines.batch import Offline"])
def test_a_started_engine_and_its_children_die_with_a_killed_run(tmp_path, monkeypatch, engine):
    """`kill -9` of the run (no Python cleanup) must not leave a vLLM server or offline worker holding memory and a
    port, nor the engine and worker processes vLLM spawns (here a background child of the stand-in), which a
    death signal on the command alone would orphan."""
    import signal
    import time

    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, "sleep 300 & exec sleep 300"))
    code = _SERVER_PARENT.format(root=str(ROOT), tmp=str(tmp_path), log=str(tmp_path / "engine.log")).replace(
        "harness.engines.vllm import Server", f"{engine} as Server")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pgid = int(parent.stdout.readline())              # the engine's group (spawn_group: its keeper's pid)
        deadline = time.time() + 10
        while len(_group_alive(pgid)) < 3 and time.time() < deadline:
            time.sleep(0.1)
        assert len(_group_alive(pgid)) == 3               # keeper, the command, its child
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.time() + 10
    while _group_alive(pgid) and time.time() < deadline:
        time.sleep(0.1)
    assert _group_alive(pgid) == []


# ------------------------------------------------------------------ engine vllm-batch (offline LLM.generate)

_FAKE_BATCH_WORKER = r'''
import json, sys
print("a log line on stdout")                  # not a protocol message: skipped
sys.stdout.write(json.dumps({"ready": True, "seconds": 0.0}) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    msg = json.loads(line)
    items = [json.loads(l) for l in open(msg["requests"])]
    if any("FAIL" in it["prompt"] for it in items):
        print(json.dumps({"error": "ValueError: asked to fail"}), flush=True); continue
    with open(msg["outputs"], "w") as f:
        for it in items:
            kind = "path" if it.get("image_path") else "rgb%dx%d" % tuple(it["size"])
            f.write(json.dumps({"text": f" {it['prompt']!r} {kind} seed={it['seed']} T={it['temperature']} "
                                        f"max={it['max_tokens']} ", "token_ids": []}) + "\n")
    print(json.dumps({"done": msg["outputs"], "n": len(items)}), flush=True)
'''


def _fake_batch_python(tmp_path: Path, monkeypatch) -> None:
    """HARNESS_VLLM_PYTHON that runs a stdlib stand-in for the worker (same protocol, echoes each request)."""
    worker = tmp_path / "fake_worker.py"
    worker.write_text(_FAKE_BATCH_WORKER)
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, f'shift; exec {sys.executable} {worker} "$@"'))


def test_vllm_batch_worker_that_never_gets_ready_fails_within_the_bounded_wait(tmp_path, monkeypatch):
    import time

    from harness.engines.batch import Offline
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, "echo compiling >&2; exec sleep 300"))
    eng = Offline(tmp_path / "ckpt", timeout=2.0, log=tmp_path / "batch.log")
    t0 = time.monotonic()
    with pytest.raises(HarnessError, match=r"offline batch\) was not ready within 2 s(.|\n)*compiling"):
        eng.__enter__()
    assert time.monotonic() - t0 < 15
    assert eng.proc.poll() is not None                        # and the worker was stopped
    monkeypatch.setenv("HARNESS_VLLM_PYTHON", _fake_python(tmp_path, "echo 'ValueError: bad model' >&2; exit 7"))
    with pytest.raises(HarnessError, match=r"exited with code 7 during start(.|\n)*ValueError: bad model"):
        with Offline(tmp_path / "ckpt", timeout=30, log=tmp_path / "batch.log"):
            pass
    monkeypatch.setenv("HARNESS_VLLM_LLM_KWARGS", "{enforce_eager: true}")
    with pytest.raises(HarnessError, match="HARNESS_VLLM_LLM_KWARGS is not JSON"):
        with Offline(tmp_path / "ckpt", timeout=30, log=tmp_path / "batch.log"):
            pass


def test_vllm_batch_responders_get_the_chat_template_order_and_per_item_seeds(tmp_path, monkeypatch):
    """engine=vllm-batch: the prompt is the HF path's (vlm.chat_prompt: the checkpoint's chat template with the
    image first), the image files are handed over as paths, answers come back in input order, stripped, each
    item sampled with its own seed whatever the batch size; a worker's error is a HarnessError."""
    from harness.engines import vllm as V
    from harness.engines.batch import Offline
    from harness.models.vlm import chat_prompt, load_vlm
    from pipelines.synth.responders import RespondersConfig, respond
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    _fake_batch_python(tmp_path, monkeypatch)
    paths = [str(tmp_path / f"{i}.png") for i in range(5)]
    for path, im in zip(paths, _images(5)):
        im.save(path)
    starts, enter = [], Offline.__enter__
    monkeypatch.setattr(Offline, "__enter__", lambda self: starts.append(self.checkpoint) or enter(self))
    questions, texts = ["b ?", "a ?", "c ?", "a ?", "b ?"], []
    for bs in (2, 5):
        texts.append([[r["text"] for r in rs] for rs in respond(
            RespondersConfig(models=["policy"], samples_per_model=2, temperature=1.0, max_new_tokens=7, batch_size=bs,
                             engine="vllm-batch"), paths, questions, policy="micro-llava", seed=0)])
    assert texts[0] == texts[1]                               # batch size changes nothing
    assert len(starts) == 2                                   # one engine per model serves both samples
    processor = load_vlm("micro-llava")[1]
    order = sorted(range(5), key=lambda i: (questions[i], i))
    for pos, i in enumerate(order):
        for sample, stream in enumerate((0, 101)):            # responders.respond's stream of sample 0 and 1
            want = f"{chat_prompt(processor, questions[i])!r} path seed={stream + pos} T=1.0 max=7"
            assert texts[0][i][sample] == want
    served = next((tmp_path / "cache" / "vllm-checkpoints").glob("*/DONE")).parent     # not its logs/ folder
    with Offline(served, timeout=30, log=tmp_path / "b.log") as eng:
        assert V.generate(eng, "offline", paths[:2], ["x", "y"], max_new_tokens=3)[1].endswith("path seed=1 T=0.0 max=3")
        with pytest.raises(HarnessError, match="a batch of 1: ValueError: asked to fail"):
            V.generate(eng, "offline", paths[:1], ["FAIL"], max_new_tokens=3)


def test_lmms_adapter_generates_through_the_batch_engine(tmp_path, monkeypatch):
    from harness.engines import serve
    from harness.lmms_adapter import HarnessVLM
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    _fake_batch_python(tmp_path, monkeypatch)
    with serve.session("vllm-batch", "micro-llava") as served:
        lm = HarnessVLM(engine=served, batch_size=2)
        texts = lm._generate(_images(3), ["x ?", "y ?", "z ?"], max_new_tokens=5, batch_size=2, temperature=0.0)
        proc = served[0].proc
    assert [t.split("'", 2)[-1] for t in texts] == [f" rgb32x32 seed={i} T=0.0 max=5" for i in range(3)]
    assert "x ?" in texts[0] and "z ?" in texts[2]
    assert proc.poll() is not None                            # stopped with the session


def test_vllm_batch_is_an_engine_key_without_a_url():
    from harness.engines import check_engine
    from pipelines.synth.responders import RespondersConfig
    assert check_engine("vllm-batch", "eval.engine") == "vllm-batch"
    assert RespondersConfig(engine="vllm-batch").engine == "vllm-batch"     # several responders: one engine each
    with pytest.raises(HarnessError, match="vllm-batch \\(vLLM's offline batch generation here\\)"):
        check_engine("vllm-batch:http://127.0.0.1:9/v1", "eval.engine")
