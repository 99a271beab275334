#!/usr/bin/env bash
# One command from a fresh clone: sets up ./.venv if needed, then runs the whole test suite
# (unit, property, multi-process functional and slow end-to-end tests). Extra args go to pytest,
# e.g. `scripts/test.sh -m "not slow"` for the quick part only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
