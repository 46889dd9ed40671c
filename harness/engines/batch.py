"""The `vllm-batch` engine: vLLM's offline `LLM.generate` in a worker process of the vLLM environment.

No server, no HTTP: the worker (harness/engines/vllm_batch_worker.py, vLLM + stdlib + PIL only) builds the engine
once, then answers batches handed over as JSONL files. The harness applies the checkpoint's chat template here
(`vlm.chat_prompt`, the HF path's own prompt) and the decoding is the HF path's (greedy at temperature 0, pure
sampling seeded per item otherwise; special tokens skipped, whitespace stripped). docs/engines.md.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness.engines import vllm
from harness.errors import HarnessError

WORKER = Path(__file__).with_name("vllm_batch_worker.py")


def _payload(image) -> dict:
    """An image path as is; an image in memory as its raw RGB bytes (lossless, and ~10x cheaper than PNG)."""
    if isinstance(image, (str, Path)):
        return {"image_path": str(Path(image).resolve())}
    rgb = image.convert("RGB")
    return {"image_rgb": base64.b64encode(rgb.tobytes()).decode(), "size": list(rgb.size)}


class Offline:
    """`with Offline(checkpoint_dir) as eng: eng.generate(images, questions, ...)`, the worker stopped on exit.

    The start is bounded like the server's: no `ready` within `timeout` seconds (HARNESS_VLLM_START_TIMEOUT), or
    the worker exits first, and the worker is stopped and a HarnessError names the command and its log's end."""

    def __init__(self, checkpoint: str | Path, timeout: float | None = None, log: str | Path | None = None,
                 worker: str | Path = WORKER):
        self.checkpoint = str(checkpoint)
        self.timeout = vllm.start_timeout() if timeout is None else timeout
        self.log_path = Path(log) if log else Path(self.checkpoint).parent / f"vllm-batch-{os.getpid()}.log"
        self.cmd = [vllm.vllm_python(), str(worker), "--model", self.checkpoint,
                    "--dtype", os.environ.get("HARNESS_VLLM_DTYPE", "float32"), "--seed", "0",
                    "--llm-kwargs", os.environ.get("HARNESS_VLLM_LLM_KWARGS", "{}")]
        self.proc: subprocess.Popen | None = None
        self.start_seconds = float("nan")
        self._lines: queue.Queue = queue.Queue()
        self._processor = None
        self._dir: str | None = None
        self.last_generate_seconds: float | None = None   # the last batch's time inside LLM.generate

    def __enter__(self) -> "Offline":
        try:
            json.loads(self.cmd[-1])
        except json.JSONDecodeError as e:
            raise HarnessError(f"HARNESS_VLLM_LLM_KWARGS is not JSON ({e}): {self.cmd[-1]!r}") from None
        self.proc = vllm.spawn(self.cmd, self.log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        self._dir = tempfile.mkdtemp(prefix="vllm-batch-", dir=self.log_path.parent)
        t0 = time.monotonic()
        try:
            self._reply("start", deadline=t0 + self.timeout)
        except BaseException:
            self.stop(graceful=False)
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)       # end of the worker's output: it exited

    def _reply(self, what: str, deadline: float | None = None) -> dict:
        """The worker's next protocol message; an exit, a timeout (start only) or an `error` is a HarnessError."""
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise HarnessError(f"vLLM (offline batch) was not ready within {self.timeout:.0f} s "
                                   f"(HARNESS_VLLM_START_TIMEOUT; command: {' '.join(self.cmd)}); its log ends:\n"
                                   f"{vllm.log_tail(self.log_path)}")
            try:
                line = self._lines.get(timeout=min(left, 1.0) if left is not None else None)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait()
                raise HarnessError(f"the vLLM batch worker exited with code {code} during {what} "
                                   f"({' '.join(self.cmd)}); its log ends:\n{vllm.log_tail(self.log_path)}")
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue            # not ours (nothing else should write there, but never trust it)
            if "error" in msg:
                raise HarnessError(f"vLLM batch worker, {what}: {msg['error']} (log {self.log_path})")
            return msg

    def chat_prompt(self, question: str) -> str:
        """The HF path's prompt (vlm.chat_prompt) from the served checkpoint's own processor."""
        if self._processor is None:
            from transformers import AutoProcessor
            self._processor = AutoProcessor.from_pretrained(self.checkpoint)
        from harness.models.vlm import chat_prompt
        return chat_prompt(self._processor, question)

    def generate(self, images: Sequence, prompts: Sequence[str], max_new_tokens: int = 32,
                 temperature: float = 0.0, seed: int = 0, progress=None, **_unused) -> list[str]:
        """Answers to (image, question) pairs, in order, in one LLM.generate call (vLLM batches them itself).
        Sampled answers use seed + item index, as the server client does."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        if not prompts:
            return []
        fd, req = tempfile.mkstemp(suffix=".jsonl", dir=self._dir)
        os.close(fd)
        out = req[:-len(".jsonl")] + ".out.jsonl"
        with open(req, "w", encoding="utf-8") as f:
            for i, (im, q) in enumerate(zip(images, prompts)):
                f.write(json.dumps({"prompt": self.chat_prompt(q), **_payload(im), "max_tokens": int(max_new_tokens),
                                    "temperature": float(temperature or 0.0), "seed": int(seed) + i}) + "\n")
        try:
            self.proc.stdin.write(json.dumps({"requests": req, "outputs": out}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass                    # the worker is gone: _reply reports its exit code and log
        self.last_generate_seconds = self._reply(f"a batch of {len(prompts)}").get("generate_seconds")
        with open(out, encoding="utf-8") as f:
            texts = [json.loads(line)["text"].strip() for line in f]
        os.unlink(req)
        os.unlink(out)
        if progress is not None:
            progress(len(texts))
        return texts

    def stop(self, graceful: bool = True) -> None:
        if graceful and self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()     # end of requests: the worker exits by itself
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        vllm.stop_group(self.proc)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __exit__(self, *exc) -> bool:
        self.stop()
        return False


def print_start(engine: Offline) -> None:
    print(f"harness: vLLM offline batch engine for {engine.checkpoint} ready in {engine.start_seconds:.0f} s "
          f"(log {engine.log_path})", file=sys.stderr)
