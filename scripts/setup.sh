#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install harness into it from the lock:
# requirements.txt (no NVIDIA GPU) or requirements-gpu.txt, every package pinned with its hash, then the
# project itself without dependencies. Idempotent: a stamp keyed on the lock + pyproject.toml skips the install
# when nothing changed. The locks are made by `bash scripts/lock.sh` (README, "Updating the lock").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HARNESS_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then lock="$root/requirements-gpu.txt"
else lock="$root/requirements.txt"; fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
key=$(cat "$root/pyproject.toml" "$lock" | sha256sum | cut -c1-16)
stamp="$venv/.harness-installed-$key"
if [ ! -f "$stamp" ]; then
  extra=()
  # The CPU build of torch: from a local wheel folder where there is one, else from PyTorch's CPU index.
  if [ "$lock" = "$root/requirements.txt" ] && ! ls "${HARNESS_WHEELS:-/opt/wheels}"/torch-2.13.0+cpu-* >/dev/null 2>&1
  then extra=(--extra-index-url https://download.pytorch.org/whl/cpu); fi
  # (pip's warnings about package-index folders a machine's pip.conf names but lacks are dropped: one per package)
  python -m pip install -q --require-hashes --no-deps "${extra[@]}" -r "$lock" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  python -m pip install -q --no-deps --no-build-isolation -e "$root"
  python -c "import harness, lmms_eval, trl, peft" >/dev/null
  rm -f "$venv"/.harness-installed-*
  touch "$stamp"
  echo "harness: installed from ${lock#$root/}" >&2
fi
