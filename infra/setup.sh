#!/usr/bin/env bash
# Create .venv if needed and install the project into it. Idempotent: reinstalls only when
# pyproject.toml changes. torch goes first as the pinned CPU wheel, so nothing pulls CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
fi
# Prefect's first start on a machine creates and migrates its database (15-35 s on 2 cores),
# longer than its temporary server's start limit: done once here, before any stage runs.
if [ ! -f "${PREFECT_HOME:-$HOME/.prefect}/prefect.db" ]; then
    PREFECT_SERVER_ANALYTICS_ENABLED=false .venv/bin/prefect server database upgrade -y >/dev/null
fi
