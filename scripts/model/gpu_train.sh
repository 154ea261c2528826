#!/usr/bin/env bash
# The one command of a GPU session (device tool: one H200, 10 min per command, 15 min per session).
#   carry: ["tmp/model/<recipe>/carry"]   (made by gpu_prepare.sh)   timeout_s: 590
#   command: bash scripts/model/gpu_train.sh parenlens-code-12l
# 1. unpacks the carried real code, regenerates the generated text from the recipe's seed,
#    tokenizes both (python3 of the machine) and checks both token streams' sha256 against the
#    CPU side's (fails if they differ);
# 2. times 30 training steps (train.py --probe) and keeps the recipe's steps if they fit in
#    TRAIN_BUDGET_S (default 360) seconds, else the most that fit (the schedule is then that long; recorded);
# 3. trains (bf16 autocast, checkpoint every 1000 steps, intermediate bf16 snapshots in
#    /tmp/parenlens-snapshots/<recipe>/ on the machine), logging to $OUT/train.log as it goes;
# 4. puts the final float32 shards (each < 16 MiB) + config.json + logs.tar.gz (train.json,
#    loss_curve.csv, probe.json, data.json) into $OUT.
# The snapshots stay on the warm machine: fetch them right after with gpu_fetch_snapshots.sh.
set -euo pipefail
R=${1:?recipe name, e.g. parenlens-code-12l}
export PARENLENS_RECIPE=$R PYTHONUNBUFFERED=1
OUT=${OUT:?the device tool sets OUT}
BUDGET=${TRAIN_BUDGET_S:-360}
PY=${PY:-python3}
DEV=${TRAIN_DEVICE:-cuda}            # cpu: a dry run of this script (with TRAIN_EXTRA="--set layers=2 ...")
read -r -a EXTRA <<< "${TRAIN_EXTRA:-}"
W=tmp/model/$R
SNAP=/tmp/parenlens-snapshots/$R
RUN=/tmp/parenlens-run/$R
mkdir -p "$W" "$RUN" "$SNAP"
exec > >(tee "$OUT/train.log") 2>&1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
cp "$W/carry/corpus.tar.xz" /tmp/corpus.tar.xz
mkdir -p /tmp/carried && tar -C /tmp/carried -xJf /tmp/corpus.tar.xz
mkdir -p "$W/corpus" "$W/data" && cp /tmp/carried/corpus/* "$W/corpus/" && cp /tmp/carried/data/heldout.npz "$W/data/"
$PY scripts/model/corpus.py --generated-only
$PY scripts/model/pretokenize.py --splits real generated
$PY - "$W/data/data.json" /tmp/carried/data/data.json <<'PYEOF'
import json, sys
here, there = (json.load(open(p)) for p in sys.argv[1:])
bad = [k for k in here if here[k]["ids_sha256"] != there[k]["ids_sha256"]]
sys.exit(f"token streams differ from the CPU side's: {bad}") if bad else print("token streams identical to the CPU side's")
PYEOF
$PY scripts/model/train.py --device "$DEV" --out "$RUN/probe" --probe 30 "${EXTRA[@]}"
STEPS=$($PY - "$RUN/probe/probe.json" "$BUDGET" <<'PYEOF'
import json, sys
sys.path.insert(0, "scripts/model")
from train import RECIPE
p = json.load(open(sys.argv[1]))
fit = int(float(sys.argv[2]) / p["median_s_per_step"])
print(min(RECIPE["steps"], fit))
PYEOF
)
echo "steps: $STEPS (budget ${BUDGET}s)"
$PY scripts/model/train.py --device "$DEV" --out "$RUN" --snapshots "$SNAP" "${EXTRA[@]}" --set steps="$STEPS" \
  --log-every 50 --eval-every 1000 --save-every 1000
cp "$RUN"/final/*.safetensors "$RUN/final/config.json" "$OUT/"
cp "$RUN/probe/probe.json" "$RUN/"
cp "$W/data/data.json" "$RUN/"
tar -C "$RUN" -czf "$OUT/logs.tar.gz" train.json loss_curve.csv probe.json data.json
ls -la "$OUT" "$SNAP"
