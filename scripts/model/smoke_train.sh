#!/usr/bin/env bash
# CPU smoke test of train.py's chunked, resumable training at a tiny size (not the recipe):
# A: 30 steps in one go; B: 15 steps, then --resume to 30; C: chunks of --max-minutes 0.004
# resumed until done; D: 15 steps, kept in a store by run_store.py (push), the run folder deleted, pulled
# back (a fresh machine) and resumed to 30. The final EMA shards of A, B, C and D must be byte-identical (exact resume),
# every recipe snapshot must exist, and train.json must list the chunks. One torch thread, niced;
# about a minute or two. Needs the recipe's token arrays (build.sh or gpu_prepare.sh made them).
#   PARENLENS_RECIPE=parenlens-code-12l bash scripts/model/smoke_train.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export PARENLENS_RECIPE=${PARENLENS_RECIPE:-parenlens-code-12l} OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
T=${SMOKE_DIR:-/tmp/parenlens-smoke}
rm -rf "$T"; mkdir -p "$T"
TINY=(--set layers=2 --set d_model=64 --set heads=2 --set d_mlp=172 --set batch=4 --set seq=64 --set steps=30 --set warmup=2)
train() { nice -n 15 $PY scripts/model/train.py --device cpu --threads 1 "${TINY[@]}" --log-every 5 --eval-every 30 --save-every 10 "$@"; }
start=$(date +%s.%N)
train --out "$T/A" --snapshots "$T/A-snap" > "$T/A.log"
mid=$(date +%s.%N)
train --out "$T/B" --snapshots "$T/B-snap" --steps 15 > "$T/B1.log"
train --out "$T/B" --snapshots "$T/B-snap" --resume > "$T/B2.log"
train --out "$T/C" --snapshots "$T/C-snap" --max-minutes 0.004 > "$T/C0.log"
for i in $(seq 1 40); do
  $PY -c "import json,sys; sys.exit(0 if json.load(open('$T/C/train.json'))['finished'] else 1)" && break
  train --out "$T/C" --snapshots "$T/C-snap" --max-minutes 0.004 --resume > "$T/C$i.log"
done
train --out "$T/D" --snapshots "$T/D-snap" --steps 15 > "$T/D1.log"
$PY scripts/model/run_store.py push --run "$T/D" --store "$T/D-store" --part-bytes 3000000 > "$T/D-push.log"
rm -rf "$T/D"
$PY scripts/model/run_store.py pull --run "$T/D" --store "$T/D-store" > "$T/D-pull.log"
train --out "$T/D" --snapshots "$T/D-snap" --resume > "$T/D2.log"
end=$(date +%s.%N)
$PY - "$T" "$start" "$mid" "$end" <<'PYEOF'
import filecmp, json, os, sys
T, start, mid, end = sys.argv[1], *map(float, sys.argv[2:])
shards = sorted(f for f in os.listdir(f"{T}/A/final") if f.endswith(".safetensors"))
for run in "BCD":
    same = [filecmp.cmp(f"{T}/A/final/{f}", f"{T}/{run}/final/{f}", shallow=False) for f in shards]
    assert shards and all(same), f"{run}: final weights differ from the uninterrupted run"
info = {r: json.load(open(f"{T}/{r}/train.json")) for r in "ABC"}
for r in "ABC":
    snaps = info[r]["snapshots"]
    assert [s["step"] for s in snaps] == [1, 2, 4, 8, 15, 30], snaps
    assert all(os.path.exists(os.path.join(s["folder"], f)) for s in snaps for f in s["files"])
assert len([f for f in os.listdir(f"{T}/D-store") if f.startswith("checkpoint.pt.")]) > 1, "the store did not split"
assert len(info["B"]["chunks"]) == 2 and len(info["C"]["chunks"]) >= 2, (info["B"]["chunks"], info["C"]["chunks"])
print(json.dumps({"ok": True, "final_shards_identical": True, "chunks_C": len(info["C"]["chunks"]),
                  "wall_s_A_30_steps": round(mid - start, 1), "wall_s_all": round(end - start, 1),
                  "A_train_time_s": info["A"]["train_time_s"], "A_median_tokens_per_s": info["A"]["median_tokens_per_s_this_session"],
                  "params": info["A"]["params"]}))
PYEOF
