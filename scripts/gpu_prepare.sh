#!/usr/bin/env bash
# Prepare what a GPU machine needs beside the working tree, for scripts/gpu_check.sh there.
# usage: bash scripts/gpu_prepare.sh
#   .whl/      wheels (CPython 3.12, x86-64 Linux) of the locked versions (requirements.lock) of the
#              packages the machine's image lacks, or holds in other versions that matter: it has
#              torch and transformers but not transformer-lens. gpu_check.sh installs them there.
#   .gpu/data/ the GSM8K test split (the benchmarks' prompts), from ../shared/data.
# Both folders are git-ignored: name them in what travels (the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(
  transformer-lens transformers tokenizers huggingface-hub hf-xet httpx2 httpcore2 truststore
  sniffio fsspec beartype datasets dill multiprocess math-verify latex2sympy2-extended
  antlr4-python3-runtime regex
)
pins=()
for name in "${packages[@]}"; do
  pin=$(grep -i "^${name}==" requirements.lock || true)
  [ -n "$pin" ] || { echo "gpu_prepare.sh: $name is not in requirements.lock" >&2; exit 1; }
  pins+=("$pin")
done
py=python3; [ -x .venv/bin/python ] && py=.venv/bin/python
rm -rf .whl && mkdir -p .whl
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
$py -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${pins[@]}"
data="${ALS_DATA_DIR:-../shared/data}"
[ -f "$data/gsm8k/test.jsonl" ] || { echo "gpu_prepare.sh: no $data/gsm8k/test.jsonl (set ALS_DATA_DIR)" >&2; exit 1; }
mkdir -p .gpu/data/gsm8k && cp "$data/gsm8k/test.jsonl" .gpu/data/gsm8k/
du -sh .whl .gpu
