"""Step 4: train the embedded model (HF LlamaForCausalLM) — the same recipe on CPU or CUDA.

Data: tmp/model/data/*.npz (pretokenize.py). Each row of a batch is SEQ+1 tokens, drawn from the
generated nested-call stream with probability gen_fraction (starting at a document start, so at
<s>), else from real code (half at a document start, half anywhere). Loss: token cross-entropy
with weight paren_weight on targets that are `)`, `))`, `)))`, `))))` (weighted mean). AdamW,
linear warm-up then cosine decay, bf16 autocast, gradient clipping. Seeded; a checkpoint
(model + EMA + optimiser + sampler state) every --save-every steps makes the run resumable (--resume).
Logs: <out>/loss_curve.csv (train loss each --log-every steps; held-out real-code loss and the
authors'-template accuracy of the EMA weights each --eval-every steps) and <out>/train.json (recipe, timings).
The final weights go to <out>/final/ as two float32 safetensors shards + config.json
(export.py turns them into the HF folder; two shards keep each file under 16 MiB).

CPU: OPENBLAS_NUM_THREADS=1 nice .venv/bin/python scripts/model/train.py --device cpu --threads 2
"""
import argparse
import copy
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import BOS_ID, DATA_DIR, EOS_ID, MODEL_DIR, PARENS, WORK  # noqa: E402
from tasks import authors_set, paren_accuracy  # noqa: E402

# The documented recipe. Token budget = STEPS * BATCH * SEQ.
RECIPE = {
    "seed": 0,
    "layers": 6, "d_model": 256, "heads": 8, "d_mlp": 688, "rope_theta": 10000.0, "max_pos": 512,
    "seq": 256, "batch": 32, "steps": 4400,
    "lr": 2e-3, "min_lr_ratio": 0.1, "warmup": 200, "weight_decay": 0.1, "betas": [0.9, 0.95], "clip": 1.0,
    "gen_fraction": 0.7, "paren_weight": 10.0,
    "ema": 0.998,  # the shipped weights are an exponential moving average of the trained ones
}


def model_config(vocab: int) -> LlamaConfig:
    R = RECIPE
    return LlamaConfig(
        vocab_size=vocab, hidden_size=R["d_model"], intermediate_size=R["d_mlp"],
        num_hidden_layers=R["layers"], num_attention_heads=R["heads"], num_key_value_heads=R["heads"],
        max_position_embeddings=R["max_pos"], rope_theta=R["rope_theta"], rms_norm_eps=1e-5,
        hidden_act="silu", tie_word_embeddings=False, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
        initializer_range=0.02, attention_bias=False, mlp_bias=False,
    )


class Sampler:
    """Seeded batch sampler over the pre-tokenized streams; its state is saved in checkpoints."""

    def __init__(self, data_dir: str, seed: int):
        self.gen = np.load(os.path.join(data_dir, "generated.npz"))
        self.real = np.load(os.path.join(data_dir, "real.npz"))
        self.gen_ids, self.gen_starts = self.gen["ids"].astype(np.int64), self.gen["starts"]
        self.real_ids, self.real_starts = self.real["ids"].astype(np.int64), self.real["starts"]
        self.rng = np.random.default_rng(seed)

    def batch(self, batch: int, seq: int) -> np.ndarray:
        out = np.empty((batch, seq + 1), dtype=np.int64)  # [batch, seq+1]
        for b in range(batch):
            if self.rng.random() < RECIPE["gen_fraction"]:
                ids, starts = self.gen_ids, self.gen_starts
                s = int(starts[self.rng.integers(len(starts))])
            else:
                ids, starts = self.real_ids, self.real_starts
                s = int(starts[self.rng.integers(len(starts))]) if self.rng.random() < 0.5 else int(self.rng.integers(len(ids)))
            s = min(s, len(ids) - seq - 1)
            out[b] = ids[s:s + seq + 1]
        return out


def lr_at(step: int) -> float:
    R = RECIPE
    if step < R["warmup"]:
        return R["lr"] * (step + 1) / R["warmup"]
    t = (step - R["warmup"]) / max(1, R["steps"] - R["warmup"])
    return R["lr"] * (R["min_lr_ratio"] + (1 - R["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * t)))


def weighted_loss(logits: torch.Tensor, targets: torch.Tensor, paren_ids: torch.Tensor) -> torch.Tensor:
    # logits [batch, seq, vocab], targets [batch, seq]
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")  # [batch*seq]
    w = torch.where(torch.isin(targets.flatten(), paren_ids), RECIPE["paren_weight"], 1.0)
    return (nll * w).sum() / w.sum()


@torch.no_grad()
def heldout_loss(model, data_dir: str, seq: int, device: str, max_windows: int = 64) -> float:
    """Plain (unweighted) next-token loss on CPython's Lib/test, non-overlapping windows."""
    ids = torch.from_numpy(np.load(os.path.join(data_dir, "heldout.npz"))["ids"].astype(np.int64))
    n = min(max_windows, (len(ids) - 1) // seq)
    tot, cnt = 0.0, 0
    for s in range(0, n, 16):
        rows = torch.stack([ids[i * seq:i * seq + seq + 1] for i in range(s, min(n, s + 16))]).to(device)  # [b, seq+1]
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            logits = model(input_ids=rows[:, :-1]).logits
        nll = F.cross_entropy(logits.float().flatten(0, 1), rows[:, 1:].flatten(), reduction="sum")
        tot, cnt = tot + nll.item(), cnt + rows[:, 1:].numel()
    return tot / cnt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--tokenizer", default=os.path.join(MODEL_DIR, "tokenizer.json"))
    ap.add_argument("--out", default=os.path.join(WORK, "run"))
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps (schedule unchanged)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--save-every", type=int, default=400)
    ap.add_argument("--smoke", action="store_true", help="test the whole path with a 4-step schedule (not the recipe)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value for an ablation (recorded in train.json)")
    args = ap.parse_args()
    R = RECIPE
    if args.smoke:
        R.update(steps=4, warmup=1)
    for kv in args.set:
        k, v = kv.split("=", 1)
        if k not in R:
            sys.exit(f"train.py: --set {kv}: unknown recipe key {k!r}, expected one of {sorted(R)}")
        R[k] = type(R[k])(v)
    dev = args.device
    torch.set_num_threads(args.threads)
    torch.manual_seed(R["seed"])
    os.makedirs(args.out, exist_ok=True)
    tok = Tokenizer.from_file(args.tokenizer)
    paren_ids = torch.tensor([tok.token_to_id(p) for p in PARENS], device=dev)

    model = LlamaForCausalLM(model_config(tok.get_vocab_size())).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": R["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=R["lr"], betas=tuple(R["betas"]), fused=(dev == "cuda"))
    ema = copy.deepcopy(model).eval()  # averaged weights: evaluated, checkpointed, exported
    for p in ema.parameters():
        p.requires_grad_(False)
    sampler = Sampler(args.data, R["seed"])
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    step, elapsed = 0, 0.0
    curve_path = os.path.join(args.out, "loss_curve.csv")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        sampler.rng.bit_generator.state = ck["sampler"]
        torch.set_rng_state(ck["torch_rng"])
        step, elapsed = ck["step"], ck["elapsed"]
        print(f"resumed at step {step}")
        with open(curve_path) as fh:  # drop rows logged after the checkpoint
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    else:
        rows = []
    fields = ["step", "tokens", "lr", "train_loss", "heldout_loss", "authors_acc", "elapsed_s"]
    with open(curve_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params}, device {dev}, threads {torch.get_num_threads()}, steps {R['steps']}, "
          f"tokens {R['steps'] * R['batch'] * R['seq']}")
    eval_prompts = authors_set(seed=999, count=25)
    last_stop = R["steps"] if args.steps is None else min(R["steps"], args.steps)
    acc_loss, acc_n, t0 = 0.0, 0, time.time()
    tok_per_s = []

    def evaluate_now() -> tuple[float, float]:
        hl = heldout_loss(ema, args.data, R["seq"], dev)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            acc = paren_accuracy(ema, tok, eval_prompts, dev)
        return hl, sum(acc[n]["acc_vocab"] for n in acc) / 4

    model.train()
    while step < last_stop:
        t_step = time.time()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        xb = torch.from_numpy(sampler.batch(R["batch"], R["seq"])).to(dev)  # [batch, seq+1]
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            logits = model(input_ids=xb[:, :-1]).logits  # [batch, seq, vocab]
        loss = weighted_loss(logits, xb[:, 1:], paren_ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), R["clip"])
        opt.step()
        with torch.no_grad():  # ema <- ema + (1 - decay) * (weights - ema)
            ema_p, cur_p = list(ema.parameters()), list(model.parameters())
            torch._foreach_lerp_(ema_p, cur_p, 1.0 - R["ema"] if R["ema"] > 0 else 1.0)
        step += 1
        acc_loss += loss.item()
        acc_n += 1
        dt = time.time() - t_step
        tok_per_s.append(R["batch"] * R["seq"] / dt)
        row = None
        if step % args.log_every == 0 or step == last_stop:
            elapsed += time.time() - t0
            t0 = time.time()
            row = {"step": step, "tokens": step * R["batch"] * R["seq"], "lr": f"{lr_at(step - 1):.6g}",
                   "train_loss": f"{acc_loss / acc_n:.4f}", "heldout_loss": "", "authors_acc": "", "elapsed_s": f"{elapsed:.1f}"}
            acc_loss, acc_n = 0.0, 0
        if step % args.eval_every == 0 or step == R["steps"]:
            hl, acc = evaluate_now()
            row = row or {"step": step, "tokens": step * R["batch"] * R["seq"], "lr": f"{lr_at(step - 1):.6g}",
                          "train_loss": "", "elapsed_s": f"{elapsed:.1f}"}
            row.update(heldout_loss=f"{hl:.4f}", authors_acc=f"{acc:.3f}")
            t0 = time.time()  # evaluation time is not training time
        if row:
            with open(curve_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=fields).writerow(row)
            print(row, f"{np.median(tok_per_s[-args.log_every:]):.0f} tok/s", flush=True)
        if step % args.save_every == 0 or step == last_stop:
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "sampler": sampler.rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": step, "elapsed": elapsed}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)

    info = {"recipe": RECIPE, "params": n_params, "device": dev,
            "device_name": torch.cuda.get_device_name() if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "torch": torch.__version__, "steps_done": step, "tokens_done": step * R["batch"] * R["seq"],
            "train_time_s": round(elapsed, 1),
            "median_tokens_per_s_this_session": round(float(np.median(tok_per_s)), 1) if tok_per_s else None}
    with open(os.path.join(args.out, "train.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    if step >= R["steps"]:
        final = os.path.join(args.out, "final")
        os.makedirs(final, exist_ok=True)
        sd = {k: v.detach().float().cpu().contiguous() for k, v in ema.state_dict().items()}
        keys = sorted(sd)
        half = len(keys) // 2
        save_file({k: sd[k] for k in keys[:half]}, os.path.join(final, "shard-0.safetensors"))
        save_file({k: sd[k] for k in keys[half:]}, os.path.join(final, "shard-1.safetensors"))
        model.config.to_json_file(os.path.join(final, "config.json"))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
