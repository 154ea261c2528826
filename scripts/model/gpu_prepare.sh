#!/usr/bin/env bash
# CPU side of a GPU training session (run here, before the `device` call; minutes on 2 cores).
# Builds the recipe's corpus and token arrays, then packs the real-code text (xz, ~10 MB; with
# the ~45 MiB checkout it must stay under the device tool's 64 MiB working-tree limit, which the
# generated text as well would pass: the GPU machine regenerates that from the seed), the
# held-out token array (small) and data.json (the token streams' sha256, which the GPU machine
# checks after re-tokenizing) into tmp/model/<recipe>/carry/.
# Usage: PARENLENS_RECIPE=parenlens-code-12l bash scripts/model/gpu_prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
R=${PARENLENS_RECIPE:?set PARENLENS_RECIPE, e.g. parenlens-code-12l}
export PARENLENS_RECIPE=$R OPENBLAS_NUM_THREADS=1
W=tmp/model/$R
if [ -n "${REBUILD:-}" ] || [ ! -f "$W/data/data.json" ]; then  # as build.sh: built once
  $PY scripts/model/corpus.py
  $PY scripts/model/pretokenize.py
fi
mkdir -p "$W/carry"
tar -C "$W" -cf - corpus/real.txt corpus/manifest.json data/data.json data/heldout.npz \
  | xz -T2 -6 > "$W/carry/corpus.tar.xz"
ls -la "$W/carry"
echo "next: device run, carry [\"$W/carry\"], command: bash scripts/model/gpu_train.sh $R"
