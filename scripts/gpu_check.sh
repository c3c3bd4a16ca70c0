#!/usr/bin/env bash
# The GPU check: the gpu-marked tests and the GPU benchmarks, on random weights of real shapes
# (Qwen2.5-0.5B, Qwen2.5-7B and Llama-3.1-8B, built in memory: workbench/sources/architectures.py):
# 461 s on one H200 without Llama and the step-overhead benchmark (2026-11-27, benchmarks/README.md).
# usage: bash scripts/gpu_check.sh [--smoke] [--out DIR]
#   --smoke   the same steps on the CPU with a tiny shape and small sizes (under a minute; the
#             test suite runs it)
#   --out DIR where the logs go (default: $OUT if set, else gpu-check/)
# On a GPU machine that lacks transformer-lens: run `bash scripts/gpu_prepare.sh` here first and
# take .whl/ and .gpu/ along; this script installs .whl/ into /tmp/als-site when needed.
set -uo pipefail
cd "$(dirname "$0")/.."
smoke=0
out="${OUT:-gpu-check}"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) [ $# -ge 2 ] || { echo "gpu_check.sh: --out needs a folder" >&2; exit 2; }; out="$2"; shift ;;
    -h|--help) sed -n 2,11p "$0" | cut -c3-; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (use --smoke, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
if [ -d .whl ] && ! $py -c 'import transformer_lens' 2>/dev/null; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/als-site .whl/*.whl || { echo "gpu_check.sh: installing .whl/ failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/als-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 ALS_PNG=0
[ -z "${ALS_DATA_DIR:-}" ] && [ -f .gpu/data/gsm8k/test.jsonl ] && export ALS_DATA_DIR="$PWD/.gpu/data"

if [ "$smoke" = 1 ]; then
  export ALS_GPU_DEVICE=cpu ALS_GPU_ARCHS=tiny,tiny-llama
  device=cpu; dtype=float32; archs=(tiny); batches=2,4; n_new=8; steer_batch=4; cache_n=16
  overhead=(--smoke)
else
  export ALS_GPU_DEVICE=cuda ALS_GPU_ARCHS=qwen2.5-0.5b,qwen2.5-7b,llama-3.1-8b
  device=cuda; dtype=bfloat16; archs=(qwen2.5-0.5b qwen2.5-7b llama-3.1-8b); batches=32,128
  n_new=64; steer_batch=32; cache_n=256
  overhead=(--device cuda --dtype bfloat16 --archs qwen2.5-7b,llama-3.1-8b --batch-sizes 1,8,32,128
    --new-tokens 64 --repeats 3)
fi
n_prompts=${batches##*,}
failed=()
summary="$out/summary.txt"
: > "$summary"

step() {  # step NAME LOG COMMAND...: run, append to LOG, record status and seconds
  local name=$1 log=$2 start=$SECONDS
  shift 2
  echo "== $name: $*" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "$name rc=$rc seconds=$((SECONDS - start))" | tee -a "$summary"
  [ "$rc" = 0 ] || failed+=("$name")
}

step environment "$out/env.txt" $py benchmarks/environment.py
[ ${#failed[@]} = 0 ] || { echo "gpu_check.sh: the environment does not import; stopping" >&2; exit 1; }
for arch in "${archs[@]}"; do  # the load-time check's error, measured before it can refuse a load
  step "selfcheck-$arch" "$out/tests.log" $py benchmarks/self_check.py --model "random:$arch" \
    --device $device --dtype bfloat16 --repeats 3
done
step tests "$out/tests.log" $py -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rA \
  --junitxml "$out/tests.xml"
step step-overhead "$out/step-overhead.txt" $py benchmarks/step_overhead.py "${overhead[@]}"
for arch in "${archs[@]}"; do
  log="$out/bench-$arch.txt"
  step "throughput-$arch" "$log" $py benchmarks/generation_throughput.py --model "random:$arch" \
    --device $device --dtype $dtype --batch-sizes $batches --n-prompts "$n_prompts" \
    --max-new-tokens $n_new --repeats 2 --static
  step "steering-$arch" "$log" $py benchmarks/steering_overhead.py --model "random:$arch" \
    --device $device --dtype $dtype --batch-size $steer_batch --n-prompts $steer_batch \
    --max-new-tokens $n_new --repeats 2
  step "activations-$arch" "$log" $py benchmarks/activation_memory.py --model "random:$arch" \
    --device $device --n $cache_n --gen-tokens $n_new --batch-size 16
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check.sh: failed: ${failed[*]} (logs in $out)" | tee -a "$summary" >&2
  exit 1
fi
echo "gpu_check.sh: all steps passed (logs in $out)" | tee -a "$summary"
