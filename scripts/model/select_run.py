"""GPU-session helper: pick the best of several train.py runs (ablations) on *validation* prompts.

Each run's final shards are exported to a scratch HF folder and scored on the four prompt
templates with a validation seed (different from evaluate.py's test seed). Score: number of
per-n targets met, ties broken by mean accuracy. Copies the winner's loss_curve.csv, train.json
and final shards to <out>/best/ and writes <out>/ablation.json with every run's results.
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import TOKENIZER_DIR  # noqa: E402
from tasks import TEMPLATES, paren_accuracy  # noqa: E402

VALIDATION_SEED = 31337


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM
    from train import model_config
    tok = Tokenizer.from_file(os.path.join(TOKENIZER_DIR, "tokenizer.json"))
    results = []
    for run in args.runs:
        sd = {}
        for f in sorted(os.listdir(os.path.join(run, "final"))):
            if f.endswith(".safetensors"):
                sd.update(load_file(os.path.join(run, "final", f)))
        model = LlamaForCausalLM(model_config(tok.get_vocab_size()))
        model.load_state_dict(sd, strict=True)
        model = model.to(args.device).eval()
        scores, met, accs = {}, 0, []
        for i, (name, make) in enumerate(TEMPLATES.items()):
            res = paren_accuracy(model, tok, make(VALIDATION_SEED + i, 100), args.device)
            metric = "acc_vocab" if name == "authors" else "acc_among_four"
            targets = {1: 0.97, 2: 0.97, 3: 0.97, 4: 0.97} if name == "authors" else {1: 0.95, 2: 0.90, 3: 0.85, 4: 0.80}
            scores[name] = {n: round(r[metric], 3) for n, r in res.items()}
            met += sum(res[n][metric] >= targets[n] for n in res)
            accs += [res[n][metric] for n in res]
        with open(os.path.join(run, "train.json")) as fh:
            recipe = json.load(fh)["recipe"]
        results.append({"run": os.path.basename(run), "recipe": recipe, "validation": scores,
                        "targets_met": int(met), "mean_acc": round(sum(accs) / len(accs), 4)})
        print(results[-1], flush=True)
    best = max(results, key=lambda r: (r["targets_met"], r["mean_acc"]))
    src = [r for r in args.runs if os.path.basename(r) == best["run"]][0]
    dst = os.path.join(args.out, "best")
    os.makedirs(os.path.join(dst, "final"), exist_ok=True)
    for f in ["loss_curve.csv", "train.json"]:
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    for f in os.listdir(os.path.join(src, "final")):
        if f.endswith(".safetensors"):
            shutil.copy(os.path.join(src, "final", f), os.path.join(dst, "final", f))
    with open(os.path.join(args.out, "ablation.json"), "w") as fh:
        json.dump({"validation_seed": VALIDATION_SEED, "prompts_per_n": 100, "chosen": best["run"], "runs": results}, fh, indent=1)
    print("chosen", best["run"])


if __name__ == "__main__":
    main()
