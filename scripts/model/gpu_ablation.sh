#!/usr/bin/env bash
# What ran on the lent H100 for the shipped model (one device call): four runs of train.py in
# parallel on one GPU (recipe variants, each value set explicitly) — then select_run.py picks
# the winner on validation prompts (seed 31337; evaluate.py tests on seed 2025).
# Usage (repo root, tmp/model/data carried): bash scripts/model/gpu_ablation.sh OUTDIR
set -euo pipefail
OUT=${1:?outdir}
export PYTHONUNBUFFERED=1
W=$OUT/work; mkdir -p $W
i=0
# run0: paren_weight 5 (the notes' value), run1: + gen_fraction 0.8, run2: paren_weight 10 (chosen:
# now the recipe's default), run3: paren_weight 5 with seed 1. Results: data/models/*/ablation.json
for v in "paren_weight=5.0 gen_fraction=0.7 seed=0" "paren_weight=5.0 gen_fraction=0.8 seed=0" \
         "paren_weight=10.0 gen_fraction=0.7 seed=0" "paren_weight=5.0 gen_fraction=0.7 seed=1"; do
  sets=(); for kv in $v; do sets+=(--set "$kv"); done
  python3 scripts/model/train.py --device cuda --out $W/run$i "${sets[@]}" > $W/run$i.log 2>&1 &
  i=$((i+1))
done
wait
grep -h "'step': 4400" $W/run*.log | cut -c1-200 || true
python3 scripts/model/select_run.py $W/run0 $W/run1 $W/run2 $W/run3 --out $OUT
