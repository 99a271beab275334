#!/usr/bin/env bash
# The gates CI runs before the tests: ruff over the whole tree and mypy over consensus/, p2p/ and
# node/ (both configured in pyproject.toml). Sets up ./.venv like the other scripts; exits non-zero
# on any finding.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "ruff check ." >&2
"$ROOT/.venv/bin/ruff" check --no-cache .
echo "mypy ($(sed -n 's/^files = //p' pyproject.toml))" >&2
"$ROOT/.venv/bin/mypy"
