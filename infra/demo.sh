#!/usr/bin/env bash
# The main job: set up the environment if needed, then rebuild every artifact of the demo.
# One Prefect server serves the whole run (started here when none answers at 127.0.0.1:4200),
# so every stage shows live at http://127.0.0.1:4200 and none pays for a temporary server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
. .venv/bin/activate
if PREFECT_API_URL=$(python -m flows.server); then
    export PREFECT_API_URL
    echo "Prefect UI: ${PREFECT_API_URL%/api} (the server stays up; stop it with: python -m flows.server --stop)"
fi
dvc repro "$@"
