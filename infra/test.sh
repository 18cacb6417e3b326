#!/usr/bin/env bash
# The whole test suite: set up the environment if needed, lint and format check, then pytest on
# TEST_WORKERS processes (pytest-xdist, default 2: most tests wait on a subprocess, a server or
# one torch thread), one test file per process so a module's fixtures are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest --numprocesses "${TEST_WORKERS:-2}" --dist loadfile "$@"
