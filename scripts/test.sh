#!/usr/bin/env bash
# One command: create/refresh the environment, then run the default (fast) test tier.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow tier.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh"
cd "$root"
exec python -m pytest -q "$@"
