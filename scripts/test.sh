#!/usr/bin/env bash
# Set up (if needed) and run the default test suite: tiny models built in code, no download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
