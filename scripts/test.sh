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
echo "== pytest"
exec bash scripts/with-keyring.sh python -m pytest "$@"
