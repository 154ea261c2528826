#!/usr/bin/env bash
# Rebuild the embedded model from scratch: corpus -> tokenizer -> pre-tokenized data -> training
# -> HF folder -> evaluation -> model card -> golden fixtures. Seeded throughout.
# CPU (the documented recipe, ~2.2-2.5 h on 2 cores): bash scripts/model/build.sh
# CUDA (same recipe, minutes):                        DEVICE=cuda bash scripts/model/build.sh
# Training resumes from tmp/model/run/checkpoint.pt if it exists (RESUME=1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cpu}
export OPENBLAS_NUM_THREADS=1
$PY scripts/model/corpus.py
$PY scripts/model/tokenizer.py
$PY scripts/model/pretokenize.py
$PY scripts/model/train.py --device "$DEVICE" --threads 2 ${RESUME:+--resume}
$PY scripts/model/export.py
$PY scripts/model/evaluate.py
$PY scripts/model/make_card.py
$PY scripts/model/make_golden.py
