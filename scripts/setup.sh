#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install harness into it. Idempotent:
# a stamp keyed on pyproject.toml + constraints skips the install when nothing changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HARNESS_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
key=$(cat "$root/pyproject.toml" "$root/constraints/cpu.txt" | sha256sum | cut -c1-16)
stamp="$venv/.harness-installed-$key"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    # GPU machine: let pip choose the normal (CUDA) torch build.
    python -m pip install -q -e "$root[test]"
  else
    # CPU machine: constrain torch to the CPU build (FACTS.md §3), then undo the torchvision trap:
    # the torchvision wheel pip picks is a CUDA build that breaks `import lmms_eval` with CPU torch.
    python -m pip install -q -c "$root/constraints/cpu.txt" -e "$root[test]"
    if ! python -c "import torchvision" >/dev/null 2>&1; then
      python -m pip uninstall -q -y torchvision
    fi
  fi
  python -c "import harness, lmms_eval, trl, peft" >/dev/null
  rm -f "$venv"/.harness-installed-*
  touch "$stamp"
fi
