"""Step 6: evaluate the shipped folder; writes data/models/<name>/eval.json (read by make_card.py).

- The authors' template (`#print the string N` / `print(str(...N`, random 3-digit N), n = 1..4
  missing parens: argmax over the whole vocabulary at the last position (and among the four).
- Three held-out nested-call templates written differently from the training generator (method
  calls with several arguments, calls inside a function body, partly-closed calls): accuracy among
  the four paren-run tokens, vocabulary accuracy beside it.
- Held-out next-token loss (float32, nats/token) on CPython's Lib/test, never trained on.
- Greedy sample completions.
All prompt sets are seeded; the model runs in float32 on the CPU.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import DATA_DIR, MODEL_DIR  # noqa: E402
from tasks import TEMPLATES, paren_accuracy  # noqa: E402

SEED = 2025
PER_N = 200
HELDOUT_WINDOWS, SEQ = 400, 256
TARGETS = {  # (metric, per-n thresholds) from the model issue
    "authors": ("acc_vocab", {1: 0.97, 2: 0.97, 3: 0.97, 4: 0.97}),
    "other": ("acc_among_four", {1: 0.95, 2: 0.90, 3: 0.85, 4: 0.80}),
}
SAMPLES = [
    "#print the string 417\nprint(str(str(417",
    "def area(shape):\n    return math.sqrt(abs(shape.width * shape.height",
    "result = session.dispatch(alpha, codec.pack(beta, frame.seal(gamma, 12",
    "import os\n\n\ndef read_config(path):\n    with open(os.path.join(",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
]


@torch.no_grad()
def heldout_loss(model, ids: np.ndarray) -> dict:
    ids = torch.from_numpy(ids.astype(np.int64))
    n = min(HELDOUT_WINDOWS, (len(ids) - 1) // SEQ)
    tot, cnt = 0.0, 0
    for s in range(0, n, 16):
        rows = torch.stack([ids[i * SEQ:i * SEQ + SEQ + 1] for i in range(s, min(n, s + 16))])  # [b, SEQ+1]
        logits = model(input_ids=rows[:, :-1]).logits  # [b, SEQ, vocab]
        tot += F.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), reduction="sum").item()
        cnt += rows[:, 1:].numel()
    return {"source": "CPython Lib/test (held out)", "tokens": cnt, "windows": n, "seq": SEQ,
            "loss_nats_per_token": round(tot / cnt, 4), "perplexity": round(math.exp(tot / cnt), 2)}


@torch.no_grad()
def greedy(model, tok, prompt: str, max_new: int = 24) -> str:
    ids = tok.encode(prompt).ids
    out = []
    for _ in range(max_new):
        nxt = int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
        out.append(nxt)
        if "\n" in tok.id_to_token(nxt) or nxt == 2:
            break
    full = tok.decode(ids[1:] + out)  # decoded with the prompt: Llama's decoder strips a leading space
    assert full.startswith(prompt), (prompt, full)
    return full[len(prompt):]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=MODEL_DIR)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()

    templates = {}
    for i, (name, make) in enumerate(TEMPLATES.items()):
        prompts = make(SEED + i, PER_N)
        res = paren_accuracy(model, tok, prompts, "cpu")
        metric, thresholds = TARGETS["authors" if name == "authors" else "other"]
        templates[name] = {
            "per_n": {str(n): {**{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()},
                               "target": thresholds[n], "target_metric": metric, "meets_target": r[metric] >= thresholds[n]}
                      for n, r in res.items()},
            "examples": {str(n): next(p + "⟨" + l + "⟩" for p, l, m in prompts if m == n) for n in range(1, 5)},
        }
        print(name, {n: (r["acc_among_four"], r["acc_vocab"]) for n, r in res.items()}, flush=True)
    held = heldout_loss(model, np.load(os.path.join(DATA_DIR, "heldout.npz"))["ids"])
    print("heldout", held, flush=True)
    samples = [{"prompt": p, "completion": greedy(model, tok, p)} for p in SAMPLES]
    out = {"model": os.path.basename(os.path.normpath(args.model)), "seed": SEED, "prompts_per_n": PER_N,
           "dtype": "float32", "templates": templates, "heldout": held, "samples": samples,
           "all_targets_met": all(v["meets_target"] for t in templates.values() for v in t["per_n"].values())}
    with open(os.path.join(args.model, "eval.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
    print(json.dumps(samples, indent=1, ensure_ascii=False))
    print("all targets met:", out["all_targets_met"])


if __name__ == "__main__":
    main()
