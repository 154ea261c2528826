"""Keep a chunked CPU training run in the repository, so the next session resumes it on a fresh machine.

Why: a session's machine does not keep tmp/ or ~/.cache between sessions (checked 2026-12-01: the
12l-cpu checkpoint of the session before was gone), so a run trained in chunks must resume from a
committed checkpoint. The store is `data/training/<recipe>/`:

- `checkpoint.pt.NN`: the resume checkpoint of train.py (model, EMA, optimiser, sampler, RNG; float32),
  split into parts of at most 45 MiB (git hosts warn from 50 MB on),
- `checkpoint.json`: step, bytes and sha256 of the whole file and of each part (pull checks them),
- `train.json`, `loss_curve.csv`: the run's records up to that step,
- `step-NNNNNN/`: the intermediate bf16 snapshots (build.sh sets PARENLENS_CHECKPOINTS=data/training).

  push: tmp/model/<recipe>/run/{checkpoint.pt, train.json, loss_curve.csv} -> the store
  pull: the store -> tmp/model/<recipe>/run/ when no local checkpoint is there (a local one is newer)
  drop: remove the checkpoint parts (the run finished: the exported model replaces them)

Usage: PARENLENS_RECIPE=parenlens-code-12l-cpu .venv/bin/python scripts/model/run_store.py push|pull|drop
       [--run DIR] [--store DIR] [--part-bytes N]   (defaults: tmp/model/<recipe>/run, data/training/<recipe>; smoke_train.sh
       round-trips a run through a temp store with them)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import MODEL_NAME, WORK  # noqa: E402

PART_BYTES = 45 * 1024 * 1024
STORE = os.path.join("data", "training", MODEL_NAME)  # replaced by --store
RUN = os.path.join(WORK, "run")  # replaced by --run
RECORDS = ["train.json", "loss_curve.csv"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parts_in(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.startswith("checkpoint.pt.")) if os.path.isdir(folder) else []


def write_atomic(path: str, data: bytes) -> None:
    with open(path + ".tmp", "wb") as fh:
        fh.write(data)
    os.replace(path + ".tmp", path)


def push() -> None:
    ckpt = os.path.join(RUN, "checkpoint.pt")
    if not os.path.exists(ckpt):
        sys.exit(f"run_store.py push: no checkpoint at {ckpt} (train a chunk first)")
    with open(ckpt, "rb") as fh:
        data = fh.read()
    with open(os.path.join(RUN, "train.json")) as fh:
        step = json.load(fh)["steps_done"]
    os.makedirs(STORE, exist_ok=True)
    parts = []
    for i in range(0, len(data), PART_BYTES):
        name = f"checkpoint.pt.{i // PART_BYTES:02d}"
        write_atomic(os.path.join(STORE, name), data[i:i + PART_BYTES])
        parts.append({"name": name, "bytes": len(data[i:i + PART_BYTES]), "sha256": sha256(data[i:i + PART_BYTES])})
    for stale in set(parts_in(STORE)) - {p["name"] for p in parts}:
        os.remove(os.path.join(STORE, stale))
    for rec in RECORDS:
        shutil.copyfile(os.path.join(RUN, rec), os.path.join(STORE, rec))
    meta = {"recipe": MODEL_NAME, "step": step, "bytes": len(data), "sha256": sha256(data), "parts": parts}
    write_atomic(os.path.join(STORE, "checkpoint.json"), (json.dumps(meta, indent=1) + "\n").encode())
    print(f"run_store.py: pushed step {step} ({len(data) / 2**20:.1f} MiB in {len(parts)} parts) to {STORE}")


def pull() -> None:
    meta_path = os.path.join(STORE, "checkpoint.json")
    ckpt = os.path.join(RUN, "checkpoint.pt")
    if not os.path.exists(meta_path):
        print(f"run_store.py: no stored run in {STORE}; training starts at step 0")
        return
    with open(meta_path) as fh:
        meta = json.load(fh)
    if os.path.exists(ckpt):
        print(f"run_store.py: {ckpt} exists; it is used, not the stored step {meta['step']}")
        return
    chunks = []
    for p in meta["parts"]:
        path = os.path.join(STORE, p["name"])
        if not os.path.exists(path):
            sys.exit(f"run_store.py pull: {path} is missing (checkpoint.json lists {len(meta['parts'])} parts)")
        with open(path, "rb") as fh:
            chunk = fh.read()
        if sha256(chunk) != p["sha256"]:
            sys.exit(f"run_store.py pull: {path}: sha256 {sha256(chunk)}, expected {p['sha256']} (checkpoint.json)")
        chunks.append(chunk)
    data = b"".join(chunks)
    if sha256(data) != meta["sha256"]:
        sys.exit(f"run_store.py pull: the joined parts' sha256 differs from checkpoint.json's {meta['sha256']}")
    os.makedirs(RUN, exist_ok=True)
    write_atomic(ckpt, data)
    for rec in RECORDS:
        shutil.copyfile(os.path.join(STORE, rec), os.path.join(RUN, rec))
    print(f"run_store.py: pulled step {meta['step']} from {STORE} into {RUN}")


def drop() -> None:
    for name in parts_in(STORE) + (["checkpoint.json"] if os.path.exists(os.path.join(STORE, "checkpoint.json")) else []):
        os.remove(os.path.join(STORE, name))
    print(f"run_store.py: removed the resume checkpoint from {STORE} (records and snapshots kept)")


if __name__ == "__main__":
    cmds = {"push": push, "pull": pull, "drop": drop}
    ap = argparse.ArgumentParser(description="keep a chunked training run in the repository")
    ap.add_argument("command", choices=sorted(cmds))
    ap.add_argument("--run", default=RUN, help="train.py's --out folder")
    ap.add_argument("--store", default=STORE, help="the committed folder")
    ap.add_argument("--part-bytes", type=int, default=PART_BYTES, help="largest part (push)")
    a = ap.parse_args()
    RUN, STORE, PART_BYTES = a.run, a.store, a.part_bytes
    cmds[a.command]()
