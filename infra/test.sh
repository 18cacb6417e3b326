#!/usr/bin/env bash
# The whole test suite: set up the environment if needed, lint and format check, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
