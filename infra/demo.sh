#!/usr/bin/env bash
# The main job: set up the environment if needed, then rebuild every artifact of the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
. .venv/bin/activate
dvc repro "$@"
