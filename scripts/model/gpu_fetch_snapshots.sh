#!/usr/bin/env bash
# Right after gpu_train.sh, on the still-warm machine (device tool; seconds each): copy two
# intermediate snapshots (bf16 shards < 16 MiB + meta) into $OUT per call; K = 0, 1, 2, ...
#   command: bash scripts/model/gpu_fetch_snapshots.sh parenlens-code-12l K
# Here, move each returned folder to the snapshot location the card records
# (PARENLENS_CHECKPOINTS, default ~/.cache/parenlens/checkpoints/<recipe>/step-NNNNNN/).
set -euo pipefail
R=${1:?recipe}; K=${2:?batch index}
SNAP=/tmp/parenlens-snapshots/$R
mapfile -t ALL < <(ls -d "$SNAP"/step-* | sort)
for s in "${ALL[@]:$((2 * K)):2}"; do
  d=$OUT/$(basename "$s"); mkdir -p "$d"
  cp "$s"/shard-*.safetensors "$s/config.json" "$s/snapshot.json" "$d/"
done
ls -laR "$OUT"
echo "snapshots: ${#ALL[@]} in all; this was batch $K of $(((${#ALL[@]} + 1) / 2))"
