#!/usr/bin/env bash
# The main job on embedded defaults: set up, write example raw data, ingest it with the
# example IngestionJob on a local Ray into ./out/example-dataset, and summarize the result.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[[ -d examples/data/raw ]] || .venv/bin/python examples/make_raw_data.py
.venv/bin/robodm-engine run examples/ingestionjob-local.yaml
.venv/bin/robodm-engine inspect out/example-dataset
