# Convenience targets; the README's two commands are the scripts themselves.
.PHONY: setup demo test bench lint fmt screenshots
setup: ; bash scripts/bootstrap.sh
demo: ; bash scripts/demo.sh
test: ; bash scripts/test.sh
bench: ; bash scripts/bench.sh
lint: ; .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy
fmt: ; .venv/bin/ruff format . && .venv/bin/ruff check --fix .
screenshots: ; .venv/bin/python scripts/screenshots.py
