#!/usr/bin/env bash
# Issue 12's spectra study where 2 CPU cores could not go: the paper's networks (Tables A.8/A.9, latent 300, ~226 M
# parameters for SVAE), its learning rate (1e-4) and long training, on one lent GPU. Every run below is its own
# process, all at once (the GPU interleaves them), each with a training budget of LIMIT minutes (the trainer stops
# after the first epoch that ends past it; the best epoch by validation is then tested as in every study run).
#
#   bash training/spectra/gpu_study.sh DATA_DIR RUNS_DIR LIMIT_MINUTES [ONLY]
#
# ONLY: a regular expression; only the runs whose names match it start (default: every run).
#
# DATA_DIR holds massbank/ (as ../shared/data); the 20,000 MOSES fingerprints of the VAEs' unpaired part are read
# from runs/cache (made once by any study run with --library-molecules 20000; carry it to a machine without MOSES).
# Each run's log goes to RUNS_DIR/<run>.log; `python -m training.spectra.report --add-study RUNS_DIR --out reports`
# adds the finished runs to reports/spectra.{json,md}.
set -u
data=${1:?DATA_DIR}
runs=${2:?RUNS_DIR}
limit=${3:?LIMIT_MINUTES}
only=${4:-.}
mkdir -p "$runs"
common=(--data "$data" --runs "$runs" --device cuda --tf32 --epochs 300 --patience 10 --time-limit "$limit"
        --no-last-checkpoint)
paper=(--network paper --lr 1e-4)
vae=(--model svae --library-molecules 20000)
start() {  # start NAME ARGS...: one study run in the background, logged to RUNS_DIR/NAME.log
    local name=$1
    shift
    [[ $name =~ $only ]] || return 0
    python3 -m training.spectra.study train "${common[@]}" "$@" >"$runs/$name.log" 2>&1 &
}
for seed in 0 1 2; do
    start mlp-paper-s1-seed$seed --model mlp --tag paper "${paper[@]}" --levels 1 --seeds $seed
    start svae-paper-s1-seed$seed "${vae[@]}" --tag paper "${paper[@]}" --levels 1 --seeds $seed
done
for seed in 0 1; do  # beyond the paper: the fingerprint log-likelihood weighted by 10, as the shipped model
    start svae-paper-fpw10-s1-seed$seed "${vae[@]}" --tag paper-fpw10 "${paper[@]}" --set fingerprint_weight=10 \
        --levels 1 --seeds $seed
done
for level in 0.5 0.1; do  # below supervision 1: where the unpaired spectra and fingerprints should pay
    start mlp-paper-s$level-seed0 --model mlp --tag paper "${paper[@]}" --levels $level --seeds 0
    start svae-paper-s$level-seed0 "${vae[@]}" --tag paper "${paper[@]}" --levels $level --seeds 0
    start svae-paper-fpw10-s$level-seed0 "${vae[@]}" --tag paper-fpw10 "${paper[@]}" --set fingerprint_weight=10 \
        --levels $level --seeds 0
done
# the shipped configuration (the study's small networks, lr 1e-3), trained until validation stops improving
start svae-fpw10-long-s1-seed0 "${vae[@]}" --tag fpw10-long --set fingerprint_weight=10 --levels 1 --seeds 0
wait
