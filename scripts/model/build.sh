#!/usr/bin/env bash
# Rebuild an embedded model from scratch: corpus -> tokenizer -> pre-tokenized data -> training
# -> HF folder -> evaluation (evaluate.py, heldout_eval.py) -> model card -> golden fixtures. Seeded.
# The recipe (scripts/model/recipes.py) comes from PARENLENS_RECIPE (default parenlens-code-6l,
# the shipped model).
#   CPU (6l: ~2.2-2.5 h on 2 idle cores):   bash scripts/model/build.sh
#   CUDA:                                   DEVICE=cuda bash scripts/model/build.sh
#   CPU in chunks (each stops after CHUNK_MINUTES of training with a checkpoint; rerun to go on):
#     PARENLENS_RECIPE=parenlens-code-12l-cpu CHUNK_MINUTES=50 RESUME=1 bash scripts/model/build.sh
#   then commit data/training/<recipe>/ (the resume checkpoint, records and snapshots of the chunk).
# Training resumes from <work>/run/checkpoint.pt if RESUME=1 (<work>: tmp/model[/<recipe>]),
# pulled first from data/training/<recipe>/ when tmp/ has none (a fresh machine); the
# corpus and token arrays are rebuilt only when missing (REBUILD=1 forces it).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cpu}
export PARENLENS_RECIPE=${PARENLENS_RECIPE:-parenlens-code-6l}
export OPENBLAS_NUM_THREADS=1
W=tmp/model; [ "$PARENLENS_RECIPE" = parenlens-code-6l ] || W=tmp/model/$PARENLENS_RECIPE
DATA=$($PY -c "import sys; sys.path.insert(0, 'scripts/model'); from common import DATA_DIR; print(DATA_DIR)")
if [ -n "${REBUILD:-}" ] || [ ! -f "$DATA/data.json" ]; then
  $PY scripts/model/corpus.py
  $PY scripts/model/tokenizer.py
  $PY scripts/model/pretokenize.py
fi
# A chunked run (RESUME=1, recipes other than 6l) lives in the repository between sessions
# (data/training/<recipe>/, run_store.py): a session's machine keeps neither tmp/ nor ~/.cache.
STORE=
if [ -n "${RESUME:-}" ] && [ "$PARENLENS_RECIPE" != parenlens-code-6l ]; then
  STORE=1
  export PARENLENS_CHECKPOINTS=${PARENLENS_CHECKPOINTS:-data/training}  # snapshots: data/training/<recipe>/step-NNNNNN/
  $PY scripts/model/run_store.py pull
fi
$PY scripts/model/train.py --device "$DEVICE" --threads "${THREADS:-2}" ${RESUME:+--resume} \
  ${CHUNK_MINUTES:+--max-minutes "$CHUNK_MINUTES"}
[ -z "$STORE" ] || $PY scripts/model/run_store.py push
if ! $PY -c "import json,sys; sys.exit(0 if json.load(open('$W/run/train.json'))['finished'] else 1)"; then
  echo "training not finished (checkpoint: $W/run/checkpoint.pt); run again with RESUME=1"
  exit 0
fi
$PY scripts/model/export.py
$PY scripts/model/evaluate.py
$PY scripts/model/heldout_eval.py
$PY scripts/model/make_card.py    # the 6l card, or make_card_recipe.py's for the later recipes
$PY scripts/model/make_golden.py  # data/golden/model-<recipe>.*
