#!/usr/bin/env bash
# One command: create/refresh the environment, then run the main job on the micro world.
# Extra arguments are passed to `harness run`, e.g. `bash scripts/run-micro.sh --size 2k`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh"
cd "$root"
exec harness run --method rm-dpo --size 5k "$@"
