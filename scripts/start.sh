#!/usr/bin/env bash
# `make start`: Azurite in the background, then the Functions host on the local .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/azurite.sh start

func_bin=""
if [ -x node_modules/.bin/func ]; then
  func_bin=node_modules/.bin/func
elif command -v func >/dev/null 2>&1; then
  func_bin=$(command -v func)
fi

if [ -z "$func_bin" ]; then
  cat >&2 <<'MSG'

Azure Functions Core Tools (`func`) is not installed, so the Functions host cannot start.
It is an optional npm dependency because its installer downloads a binary from the internet, which
fails on offline machines. Install it with `npm install -g azure-functions-core-tools@4` (or see
https://learn.microsoft.com/azure/azure-functions/functions-run-local), then run `make start` again.
Everything else works without it: `make test` runs the whole suite against real Azurite, and
`make demo` runs the clinical scenario end to end and prints the audit trail. Azurite is still
running in the background; stop it with `make stop`.
MSG
  exit 3
fi

# The host runs the worker from the active virtual environment.
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
exec "$func_bin" start
