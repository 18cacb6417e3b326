#!/usr/bin/env bash
# Every stage on the real datasets in ../shared/ner-data, as one DVC experiment: the
# `real_data` section of params.yaml says what differs from the demo; arguments are passed on
# to `dvc exp run` (more `-S key=value` overrides). It runs up to the report (TARGET=<stage>
# stops earlier), leaving out demo_corpus and the figure-5 sweep prune_scaling.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/session.sh
raw_dir=$(python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["real_data"]["ingest.raw_dir"])')
if [ ! -d "$raw_dir" ]; then
    echo "real-data: $raw_dir is not there (see ../shared/ner-data/README.md for the datasets and their formats)" >&2
    exit 1
fi
mapfile -t overrides < <(python -c '
import json, yaml
for key, value in yaml.safe_load(open("params.yaml"))["real_data"].items():
    print("-S"); print(f"{key}={json.dumps(value)}")')
dvc exp run "${overrides[@]}" "$@" "${TARGET:-report}"
