#!/usr/bin/env bash
# Regenerate the locks from pyproject.toml + constraints/{cpu,gpu}.txt with `uv pip compile` (every package
# pinned, transitive ones included). Run it after changing a dependency, then commit the lock files
# (requirements.txt, requirements-gpu.txt, and their PEP 751 copies pylock.toml, pylock.gpu.toml):
#   bash scripts/lock.sh            # needs `uv` on PATH (pip install uv), or UV=/path/to/uv
# torchvision is left out of both locks: nothing in harness imports it, and the wheel a resolver picks beside
# CPU torch is a CUDA build that breaks `import lmms_eval` (operator torchvision::nms does not exist).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
uv="${UV:-uv}"
cd "$root"
common=(pyproject.toml --extra test --extra real --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --no-emit-package torchvision --generate-hashes --quiet)
# The CPU build of torch comes from a local wheel folder where there is one (HARNESS_WHEELS, default
# /opt/wheels), else from the PyTorch CPU index.
wheels="${HARNESS_WHEELS:-/opt/wheels}"
if [ -d "$wheels" ]; then torch_src=(--find-links "$wheels")
else torch_src=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match); fi
"$uv" pip compile "${common[@]}" -c constraints/cpu.txt "${torch_src[@]}" --custom-compile-command "bash scripts/lock.sh" -o requirements.txt
"$uv" pip compile "${common[@]}" -c constraints/gpu.txt \
  --custom-compile-command "bash scripts/lock.sh" -o requirements-gpu.txt
# The same pins and hashes in the standard lock format (PEP 751), for tools that install from pylock.toml
# (`uv pip sync pylock.toml`); derived from the files above with --no-deps, so nothing is resolved twice.
plock=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-deps --format pylock.toml --quiet
       --custom-compile-command "bash scripts/lock.sh")
"$uv" pip compile requirements.txt "${plock[@]}" "${torch_src[@]}" -o pylock.toml
"$uv" pip compile requirements-gpu.txt "${plock[@]}" -o pylock.gpu.toml
