#!/usr/bin/env bash
# The whole test suite: set up the environment if needed, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
.venv/bin/python -m pytest "$@"
