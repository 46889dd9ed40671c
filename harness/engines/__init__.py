"""Generation engines: where the harness's answers come from (docs/engines.md).

- `hf` (the default): Hugging Face `generate` in this process (harness.models.vlm), batched, left-padded.
- `vllm`: a vLLM OpenAI-compatible server, started and stopped by the harness in its own environment
  (`.venv-vllm`, scripts/vllm-env.sh: vLLM pins a transformers the main install cannot share), serving a copy
  of the checkpoint prepared for it (an adapter merged in, the vision tower's keys in vLLM's layout).
- `vllm-batch`: vLLM's offline `LLM.generate` in a worker process of that environment (no server, no HTTP;
  harness.engines.batch), on the same prepared checkpoint; 2.4x the server on the micro world (docs/engines.md).
- `vllm:<url>`: an already running vLLM (or any OpenAI-compatible) server at `<url>`, e.g.
  `vllm:http://127.0.0.1:8000/v1`; the harness neither starts nor stops it and serves what it serves.

Selected by one key per place that generates: `synth.responders.engine` (responders and the on-policy policy) and
`eval.engine` (base and aligned checkpoints); `harness eval --engine`. The prompt is the same user turn (image
first, then the question; the checkpoint's own chat template is applied by the server), decoding the same
(greedy at temperature 0; `max_new_tokens`; special tokens skipped, whitespace stripped). Sampled answers are
seeded per item and reproducible, but they are not the HF engine's samples (another random stream), so the
engine is part of every stage key that generates.
"""

from __future__ import annotations

from harness.errors import HarnessError

ENGINES = ("hf", "vllm", "vllm-batch")


def check_engine(spec: str, key: str) -> str:
    """`hf`, `vllm`, `vllm-batch` or `vllm:<http(s) url>`; anything else is bad input naming the config key."""
    spec = (spec or "hf").strip()
    name, _, url = spec.partition(":")
    if name not in ENGINES or (name != "vllm" and url) or (url and not url.startswith(("http://", "https://"))):
        raise HarnessError(f"{key}={spec!r}: use hf, vllm (a server started here), vllm-batch (vLLM's offline "
                           "batch generation here) or vllm:http://HOST:PORT/v1 (a running server)")
    return spec
