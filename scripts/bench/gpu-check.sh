#!/usr/bin/env bash
# What a session with the GPU machine (the `device` tool) runs, from the repository root, after
# `npm ci` and `npm run build`: the CUDA provider check, CPU-vs-CUDA parity on the embedded model
# (scripts/bench/gpu-check.ts), then the CodeLlama-7b-shaped benchmark on CUDA (writes 13.5 GB under
# $PARENLENS_SCALE_DIR, default /tmp/i10/codellama-7b-shaped, and deletes it). Results go into
# scripts/bench/BENCH.md (sections gpu-check, scale-7b-cuda); copy them back from $OUT.
#
# onnxruntime-node's CUDA provider is not in the npm package: `ONNXRUNTIME_NODE_INSTALL=cuda12 node
# node_modules/onnxruntime-node/script/install.js` downloads it (network needed). A device machine
# without a network must already have it in node_modules/onnxruntime-node/bin/napi-v6/linux/x64/;
# if it has not, this script says so and stops (exit 2) — no GPU figure is made up.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || { echo "no NVIDIA GPU visible"; exit 2; }
if [ ! -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
  echo "CUDA provider missing in $BIN; trying the download (needs a network)"
  ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js || true
fi
if [ ! -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
  echo "CUDA provider not available on this machine: no GPU figures"; exit 2
fi
node --import tsx scripts/bench/gpu-check.ts || exit $?
# The 7B-shaped part writes 13.5 GB first (624 s on this project's 2-core CPU machine, single-threaded
# JS): with a short device budget run the parity check alone (GPU_CHECK_SCALE=0), or bring a
# written checkpoint along in $PARENLENS_SCALE_DIR (scale-7b.ts reuses one that has its .complete file).
if [ "${GPU_CHECK_SCALE:-1}" != "0" ]; then
  timeout 1500 node --import tsx scripts/bench/scale-7b.ts --ep cuda --baseline-sites 4 --delete
fi
