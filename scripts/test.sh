#!/usr/bin/env bash
# The whole test suite: set-up, lint, format check, types, import layers, then every
# test (unit, integration, e2e, ui). Tests that need root, network namespaces or a
# display skip with a reason outside CI; with CI=true they must run (see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH" QT_QPA_PLATFORM=offscreen
echo "== ruff check";  ruff check .
echo "== ruff format"; ruff format --check .
echo "== mypy";        mypy
echo "== imports";     lint-imports --no-cache  # the layers contract in pyproject.toml
if (($# == 0)); then
  # The proxy's threads run uvloop where it is installed (core/proxy/loops.py), and its
  # resolver (core/dns) runs on the proxy's loop; their tests otherwise run on asyncio's
  # loop: run them on uvloop's too (uvloop lacks some loop methods, e.g. sock_recvfrom).
  echo "== pytest: the proxy's and the resolver's tests on uvloop"
  RUSTRONAUT_TEST_LOOP=uvloop bash scripts/with-keyring.sh python -m pytest -q tests/core/proxy tests/core/dns
fi
echo "== pytest"
exec bash scripts/with-keyring.sh python -m pytest "$@"
