#!/usr/bin/env bash
# One command from a fresh clone: sets up ./.venv if needed, then runs the `testnet` CLI.
#   ./testnet.sh up          launch a 4-node local PoW testnet
#   ./testnet.sh status      ...and every other `testnet` command (see ./testnet.sh --help)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/testnet" "$@"
