#!/usr/bin/env bash
# The main job: set up the environment if needed, then rebuild every artifact of the demo,
# every stage reporting to one Prefect server (infra/session.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/session.sh
dvc repro "$@"
