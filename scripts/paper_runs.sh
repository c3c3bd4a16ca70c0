#!/usr/bin/env bash
# The ALS paper's experiment on one model, run after run (issue 30's order), each resumable.
#
#   bash scripts/paper_runs.sh                 # the embedded model, on the CPU: many hours
#   bash scripts/paper_runs.sh --only math500-p2
#   bash scripts/paper_runs.sh --only gsm8k-samples-test,gsm8k-1.5b   # these, in the script's order
#   bash scripts/paper_runs.sh --dry-run       # print the commands, run nothing
#   bash scripts/paper_runs.sh -- --model Qwen/Qwen2.5-7B-Instruct --model.device cuda --model.dtype bfloat16
#   bash scripts/paper_runs.sh --publish-every 0   # publish only when a run ends (default: every 30 min)
#
# For each run: if runs/<name> is missing but results/<name> holds a published copy, the copy is
# unpacked there first (so a new machine resumes from the committed rows); then `als run` (or
# `als compare`) decodes only what is missing; then the run is published into results/<name>
# (its README.md there is kept) and results/paper_table.md is regenerated; while it decodes, its rows so far
# are published there every --publish-every minutes, so that a machine lost mid-run loses at most that much
# (runs/ is not tracked; results/ is). Runs go one at a time:
# two decodes at once on a CPU slow each other far more than twofold. Stops at the first failure.
# Arguments after `--` go to every `als run` and `als compare` (model, device, batch size).
set -euo pipefail
cd "$(dirname "$0")/.."

als=.venv/bin/als
py=.venv/bin/python
only=""
dry=""
publish_every=30
extra=()
while (($#)); do
  case "$1" in
    --only) only="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --dry-run) dry=echo; shift ;;
    --publish-every) publish_every="${2-}"; shift $(($# > 1 ? 2 : 1)) ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "paper_runs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ! $publish_every =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "paper_runs.sh: --publish-every takes minutes (e.g. 30 or 0.5; 0: off), not '$publish_every'" >&2
  exit 2
fi

# name | command | its arguments (a run's shared settings first)
math=(--als.dataset math --als.n_fit 500 --als.n_val 64 --als.n_test 500 --generation.max_new_tokens 1024
  --als.n_candidate_layers 1 --als.alphas 0.1,0.2 --als.tau_quantiles 0.5,1.0 --als.reference true)
gsm8k_p2=(--als.dataset gsm8k --als.split_order first --als.n_fit 1000 --als.n_val 64 --als.n_test 400
  --generation.max_new_tokens 512 --als.n_candidate_layers 1 --als.alphas 0.1,0.2
  --als.tau_quantiles 0.5,1.0 --als.reference true --als.gated true --prompt.format p2)
baselines=(--compare.methods cot,sc,latentseek,als --compare.n_problems 100 --compare.retime true)
samples=(results/gsm8k-scale --sampling.temperature 0.7 --sampling.top_p 0.95 --sampling.seed 0)
declare -A command args
# issue 42: the paper's main cell (results/gsm8k-scale's protocol) on Qwen2.5-Coder-1.5B-Instruct
gsm8k_15b=(--model.name coder-1.5b --als.dataset gsm8k --als.split_order first --als.n_fit 500
  --als.n_val 64 --als.n_test 400 --generation.max_new_tokens 512 --als.n_candidate_layers 2
  --als.alphas 0.05,0.1,0.2 --als.tau_quantiles 0.5,1.0 --als.reference true --als.control true)
# ... and its fit split's probe, within strata of the 0.5B model's pass rates on the same problems,
# run after the fit stage on the machine that holds the fit states (a later one would replay them)
declare -A fit_probe
fit_probe[gsm8k-1.5b]="--probe.difficulty_from results/gsm8k-samples-fit"
# The CPU's order (one decode at a time): sampled chains first, then the 1.5B model, then the rest.
order=(math500-p1 math500-p2 gsm8k-samples-fit gsm8k-samples-test gsm8k-contrast gsm8k-1.5b
  gsm8k-within gsm8k-difficulty gsm8k-p2 gsm8k-scale-baselines math500-p1-baselines)
command[math500-p1]=run;  args[math500-p1]="${math[*]} --prompt.format p1"
command[math500-p2]=run;  args[math500-p2]="${math[*]} --prompt.format p2 --als.gated true"
command[gsm8k-p2]=run;    args[gsm8k-p2]="${gsm8k_p2[*]}"
command[gsm8k-1.5b]=run;  args[gsm8k-1.5b]="${gsm8k_15b[*]}"
command[gsm8k-scale-baselines]=compare; args[gsm8k-scale-baselines]="${baselines[*]}"
command[math500-p1-baselines]=compare;  args[math500-p1-baselines]="${baselines[*]}"
# issue 41: k sampled chains per problem of results/gsm8k-scale's fit (first 400) and test splits
command[gsm8k-samples-fit]=sample;  args[gsm8k-samples-fit]="${samples[*]} --split fit --limit 400 --sampling.k 8"
command[gsm8k-samples-test]=sample; args[gsm8k-samples-test]="${samples[*]} --split test --sampling.k 5"
# ... their analysis (teacher forcing, no decoding): the contrast probes, then the router on test
command[gsm8k-contrast]=contrast
# ... and runs steering with the within-problem and the difficulty direction on gsm8k-scale's rules
command[gsm8k-within]=derive;     args[gsm8k-within]="--kind within"
command[gsm8k-difficulty]=derive; args[gsm8k-difficulty]="--kind difficulty"

unpack() {  # results/<name> -> runs/<name>, when only the published copy is here
  local name=$1
  if [[ ! -d runs/$name && -d results/$name ]]; then
    mkdir -p runs && cp -r "results/$name" "runs/$name"
    echo "paper_runs.sh: $name: resuming from results/$name"
  fi
}

pub=""
stop_publisher() {
  [[ -z $pub ]] || { kill "$pub" 2> /dev/null && wait "$pub" 2> /dev/null; } || true
  pub=""
}
trap stop_publisher EXIT
start_publisher() {  # publish runs/<run>'s rows so far every $publish_every minutes while it decodes
  local run=$1
  [[ ! $publish_every =~ ^0*([.]0*)?$ ]] || return 0
  if [[ -n $dry ]]; then
    echo "# every $publish_every min while it decodes: $als publish runs/$run --out results/$run"
    return 0
  fi
  (  # a stop waits for a publication under way, never for the sleep
    trap 'kill "$nap" 2> /dev/null; exit 0' TERM
    while true; do
      sleep "${publish_every}m" & nap=$!
      wait "$nap"
      "$als" publish "runs/$run" --out "results/$run" > /dev/null 2>&1 || true
    done
  ) &
  pub=$!
}

for name in "${order[@]}"; do
  [[ -n $only && ",$only," != *",$name,"* ]] && continue
  if [[ ${command[$name]} == compare ]]; then
    run=${name%-baselines}  # SC@5 and LatentSeek on the first 100 test problems of that run
    [[ -n $dry ]] || unpack "$run"
    if [[ -z $dry && ! -f runs/$run/results.json ]]; then
      echo "paper_runs.sh: $name: runs/$run has no test results yet, skipped"
      continue
    fi
    start_publisher "$run"
    # shellcheck disable=SC2086
    $dry "$als" compare "runs/$run" ${args[$name]} "${extra[@]}"
  elif [[ ${command[$name]} == sample ]]; then
    run=$name
    [[ -n $dry ]] || unpack "$run"
    start_publisher "$run"
    # shellcheck disable=SC2086
    $dry "$als" sample ${args[$name]} --out "runs/$run"
  elif [[ ${command[$name]} == contrast ]]; then
    run=gsm8k-samples-fit
    [[ -n $dry ]] || { unpack "$run"; unpack gsm8k-samples-test; }
    $dry "$als" probe results/gsm8k-scale --samples "runs/$run"
    $dry "$als" route results/gsm8k-scale --fit_samples "runs/$run" --test_samples runs/gsm8k-samples-test \
      --retime 32
    $dry "$als" publish runs/gsm8k-samples-test --out results/gsm8k-samples-test
  elif [[ ${command[$name]} == derive ]]; then
    run=$name
    [[ -n $dry ]] || { unpack "$run"; unpack gsm8k-samples-fit; }
    # shellcheck disable=SC2086
    $dry "$als" derive runs/gsm8k-samples-fit ${args[$name]} --out "runs/$run"
    start_publisher "$run"
    $dry "$als" stage select "runs/$run"
    $dry "$als" stage test "runs/$run"
    $dry "$als" stage retime "runs/$run" --limit 32
  else
    run=$name
    [[ -n $dry ]] || unpack "$run"
    start_publisher "$run"
    # shellcheck disable=SC2086
    if [[ -n ${fit_probe[$name]-} ]]; then  # its folder is unpacked: fit first, then the probe
      $dry "$als" stage fit "runs/$run"
      # shellcheck disable=SC2086
      $dry "$als" probe "runs/$run" --probe.fit_only true ${fit_probe[$name]}
    fi
    model=(--model.name embedded)  # unless the run names its own
    [[ ${args[$name]} == *--model.name* ]] && model=()
    # shellcheck disable=SC2086
    $dry "$als" run --out "runs/$run" "${model[@]}" ${args[$name]} "${extra[@]}"
  fi
  stop_publisher
  $dry "$als" publish "runs/$run" --out "results/$run"
  [[ -n $dry ]] || "$py" analyses/paper_table.py > /dev/null
  [[ -n $dry ]] || echo "paper_runs.sh: $name done: results/$run, results/paper_table.md"
done
