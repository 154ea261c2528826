"""Step 4: train the embedded model (HF LlamaForCausalLM) — the same recipe on CPU or CUDA.

Data: tmp/model/data/*.npz (pretokenize.py). Each row of a batch is SEQ+1 tokens, drawn from the
generated nested-call stream with probability gen_fraction (starting at a document start, so at
<s>), else from real code (half at a document start, half anywhere). Loss: token cross-entropy
with weight paren_weight on targets that are `)`, `))`, `)))`, `))))` (weighted mean). AdamW,
linear warm-up then cosine decay, bf16 autocast on CUDA (float32 on the CPU: --precision), gradient clipping. Seeded; a checkpoint
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
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import BOS_ID, CHECKPOINTS, DATA_DIR, EOS_ID, MODEL_NAME, PARENS, RECIPE_SPEC, TOKENIZER_DIR, WORK  # noqa: E402
from tasks import authors_set, paren_accuracy  # noqa: E402

# The chosen recipe's training values (recipes.py; PARENLENS_RECIPE). Token budget = steps * batch * seq.
RECIPE = copy.deepcopy(RECIPE_SPEC["train"])
SNAPSHOT_FRACTIONS = RECIPE_SPEC.get("snapshots", [])
MAX_SHARD_BYTES = 15 * 1024 * 1024  # every file under 16 MiB (the device tool's per-file limit)


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
def amp(device: str, precision: str):
    """The forward's autocast context: bf16, or off (float32)."""
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")


def heldout_loss(model, data_dir: str, seq: int, device: str, precision: str, max_windows: int = 64) -> float:
    """Plain (unweighted) next-token loss on CPython's Lib/test, non-overlapping windows."""
    ids = torch.from_numpy(np.load(os.path.join(data_dir, "heldout.npz"))["ids"].astype(np.int64))
    n = min(max_windows, (len(ids) - 1) // seq)
    tot, cnt = 0.0, 0
    for s in range(0, n, 16):
        rows = torch.stack([ids[i * seq:i * seq + seq + 1] for i in range(s, min(n, s + 16))]).to(device)  # [b, seq+1]
        with amp(device, precision):
            logits = model(input_ids=rows[:, :-1]).logits
        nll = F.cross_entropy(logits.float().flatten(0, 1), rows[:, 1:].flatten(), reduction="sum")
        tot, cnt = tot + nll.item(), cnt + rows[:, 1:].numel()
    return tot / cnt


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--tokenizer", default=os.path.join(TOKENIZER_DIR, "tokenizer.json"))
    ap.add_argument("--out", default=os.path.join(WORK, "run"), help="resume checkpoint, logs, final shards")
    ap.add_argument("--snapshots", default=CHECKPOINTS, help="intermediate bf16 checkpoints (outside the repo)")
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps (schedule unchanged)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop (with a checkpoint) after this much training time in this invocation: one CPU chunk")
    ap.add_argument("--probe", type=int, default=0, metavar="N",
                    help="time N steps (after 5 warm-up steps), write <out>/probe.json, save nothing else")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                    help="autocast: auto = bf16 on CUDA, fp32 on the CPU (a CPU without bf16 instructions, as this "
                         "2-core machine's, ran the 12l-cpu recipe 3.0x faster in fp32: 3,480 vs 1,145 tokens/s); "
                         "one run keeps one precision (a resume with another is refused)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=400)
    ap.add_argument("--save-every", type=int, default=400)
    ap.add_argument("--smoke", action="store_true", help="test the whole path with a 4-step schedule (not the recipe)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value for an ablation (recorded in train.json)")
    return ap.parse_args()


def apply_overrides(args: argparse.Namespace) -> None:
    if args.smoke:
        RECIPE.update(steps=4, warmup=1)
    for kv in args.set:
        k, v = kv.split("=", 1)
        if k not in RECIPE:
            sys.exit(f"train.py: --set {kv}: unknown recipe key {k!r}, expected one of {sorted(RECIPE)}")
        RECIPE[k] = type(RECIPE[k])(v)
    if args.probe:
        RECIPE.update(steps=args.probe + 5)


def snapshot_steps() -> list[int]:
    """The steps at which an intermediate checkpoint is written (recipe fractions of the schedule)."""
    return sorted({max(1, round(f * RECIPE["steps"])) for f in SNAPSHOT_FRACTIONS})


def save_sharded(sd: dict, folder: str, dtype: torch.dtype) -> list[str]:
    """state dict -> shard-k.safetensors files of at most MAX_SHARD_BYTES each (sorted keys)."""
    os.makedirs(folder, exist_ok=True)
    shards, cur, size = [], {}, 0
    for k in sorted(sd):
        t = sd[k].detach().to(dtype).cpu().contiguous()
        nbytes = t.numel() * t.element_size()
        if cur and size + nbytes > MAX_SHARD_BYTES:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = t, size + nbytes
    shards.append(cur)
    names = []
    for i, sh in enumerate(shards):
        names.append(f"shard-{i}.safetensors")
        save_file(sh, os.path.join(folder, names[-1]))
    return names


def make_loadable(folder: str, files: list[str]) -> None:
    """Make a folder of shards a Hugging Face checkpoint: model.safetensors.index.json (which shard
    holds which tensor) and the recipe's tokenizer files, so transformers and HookedLlama.fromPretrained
    load a snapshot as it is."""
    weight_map, total = {}, 0
    for f in files:
        with safe_open(os.path.join(folder, f), "pt") as sh:
            for k in sh.keys():
                weight_map[k] = f
                t = sh.get_slice(k)
                n = 1
                for d in t.get_shape():
                    n *= d
                total += n * {"BF16": 2, "F16": 2, "F32": 4}[t.get_dtype()]
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, fh, indent=1)
        fh.write("\n")
    for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copyfile(os.path.join(TOKENIZER_DIR, name), os.path.join(folder, name))


def save_snapshot(model, args: argparse.Namespace, step: int, elapsed: float) -> dict:
    """Intermediate checkpoint: the trained (not averaged) weights in bf16 + config + index + tokenizer."""
    folder = os.path.join(args.snapshots, f"step-{step:06d}")
    files = save_sharded(model.state_dict(), folder, torch.bfloat16)
    model.config.to_json_file(os.path.join(folder, "config.json"))
    make_loadable(folder, files)
    rec = {"step": step, "tokens": step * RECIPE["batch"] * RECIPE["seq"], "train_time_s": round(elapsed, 1),
           "folder": folder, "files": files, "dtype": "bfloat16", "weights": "trained (not EMA)"}
    with open(os.path.join(folder, "snapshot.json"), "w") as fh:
        json.dump(rec, fh, indent=1)
    return rec


class Run:
    """Model, EMA, optimiser and sampler of one training run; checkpointable and resumable."""

    def __init__(self, args: argparse.Namespace, vocab: int):
        R, dev = RECIPE, args.device
        torch.manual_seed(R["seed"])
        self.model = LlamaForCausalLM(model_config(vocab)).to(dev)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": R["weight_decay"]},
                                      {"params": no_decay, "weight_decay": 0.0}],
                                     lr=R["lr"], betas=tuple(R["betas"]), fused=(dev == "cuda"))
        self.ema = copy.deepcopy(self.model).eval()  # averaged weights: evaluated, checkpointed, exported
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.sampler = Sampler(args.data, R["seed"])
        self.step, self.elapsed = 0, 0.0
        self.chunks: list[dict] = []     # one entry per invocation that trained (CPU chunks, resumes)
        self.snapshots: list[dict] = []
        self.precision = args.precision if args.precision != "auto" else ("bf16" if dev == "cuda" else "fp32")

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "sampler": self.sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "step": self.step, "elapsed": self.elapsed, "chunks": self.chunks, "snapshots": self.snapshots,
                "recipe": RECIPE, "precision": self.precision}

    def load(self, path: str, dev: str) -> None:
        ck = torch.load(path, map_location=dev, weights_only=False)
        if ck.get("recipe", RECIPE) != RECIPE:
            sys.exit(f"train.py: {path} was written by another recipe than {MODEL_NAME}'s: {ck['recipe']} (delete it or fix --set)")
        if ck.get("precision", "bf16") != self.precision:  # checkpoints before --precision were bf16
            sys.exit(f"train.py: {path} was trained with precision {ck.get('precision', 'bf16')}, this run asks for "
                     f"{self.precision}: resume with --precision {ck.get('precision', 'bf16')}")
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.sampler.rng.bit_generator.state = ck["sampler"]
        torch.set_rng_state(ck["torch_rng"])
        self.step, self.elapsed = ck["step"], ck["elapsed"]
        self.chunks, self.snapshots = ck.get("chunks", []), ck.get("snapshots", [])

    def save(self, path: str) -> None:
        torch.save(self.state(), path + ".tmp")
        os.replace(path + ".tmp", path)

    def train_step(self, paren_ids: torch.Tensor, dev: str) -> float:
        R = RECIPE
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step)
        xb = torch.from_numpy(self.sampler.batch(R["batch"], R["seq"])).to(dev)  # [batch, seq+1]
        with amp(dev, self.precision):
            logits = self.model(input_ids=xb[:, :-1]).logits  # [batch, seq, vocab]
        loss = weighted_loss(logits, xb[:, 1:], paren_ids)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), R["clip"])
        self.opt.step()
        with torch.no_grad():  # ema <- ema + (1 - decay) * (weights - ema)
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()),
                                 1.0 - R["ema"] if R["ema"] > 0 else 1.0)
        self.step += 1
        return loss.item()


FIELDS = ["step", "tokens", "lr", "train_loss", "heldout_loss", "authors_acc", "elapsed_s"]


def open_curve(path: str, step: int, resumed: bool) -> None:
    """Rewrite the loss curve keeping only rows up to the checkpoint's step."""
    rows = []
    if resumed and os.path.exists(path):
        with open(path) as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


def probe(run: Run, args: argparse.Namespace, paren_ids: torch.Tensor) -> None:
    """Time args.probe steps after 5 warm-up steps; nothing is saved but <out>/probe.json."""
    times = []
    for i in range(args.probe + 5):
        if args.device == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        run.train_step(paren_ids, args.device)
        if args.device == "cuda":
            torch.cuda.synchronize()
        if i >= 5:
            times.append(time.time() - t)
    res = {"recipe": MODEL_NAME, "device": args.device, "precision": run.precision, "threads": torch.get_num_threads(),
           "steps_timed": len(times),
           "median_s_per_step": round(float(np.median(times)), 5),
           "tokens_per_step": RECIPE["batch"] * RECIPE["seq"],
           "tokens_per_s": round(RECIPE["batch"] * RECIPE["seq"] / float(np.median(times)), 1),
           "params": sum(p.numel() for p in run.model.parameters())}
    with open(os.path.join(args.out, "probe.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    print(json.dumps(res))


def write_info(run: Run, args: argparse.Namespace, n_params: int, tok_per_s: list[float]) -> dict:
    dev = args.device
    info = {"recipe_name": MODEL_NAME, "recipe": RECIPE, "params": n_params, "device": dev,
            "device_name": torch.cuda.get_device_name() if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "torch": torch.__version__, "precision": run.precision, "steps_done": run.step, "tokens_done": run.step * RECIPE["batch"] * RECIPE["seq"],
            "train_time_s": round(run.elapsed, 1),
            "median_tokens_per_s_this_session": round(float(np.median(tok_per_s)), 1) if tok_per_s else None,
            "chunks": run.chunks, "snapshots": run.snapshots, "snapshot_dir": args.snapshots,
            "finished": run.step >= RECIPE["steps"]}
    with open(os.path.join(args.out, "train.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    return info


def main() -> None:
    args = parse_args()
    apply_overrides(args)
    R, dev = RECIPE, args.device
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    tok = Tokenizer.from_file(args.tokenizer)
    paren_ids = torch.tensor([tok.token_to_id(p) for p in PARENS], device=dev)
    run = Run(args, tok.get_vocab_size())
    if args.probe:
        return probe(run, args, paren_ids)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    resumed = args.resume and os.path.exists(ckpt_path)
    if resumed:
        run.load(ckpt_path, dev)
        print(f"resumed at step {run.step}")
    curve_path = os.path.join(args.out, "loss_curve.csv")
    open_curve(curve_path, run.step, resumed)
    n_params = sum(p.numel() for p in run.model.parameters())
    print(f"recipe {MODEL_NAME}, params {n_params}, device {dev}, threads {torch.get_num_threads()}, steps {R['steps']}, "
          f"tokens {R['steps'] * R['batch'] * R['seq']}")
    eval_prompts = authors_set(seed=999, count=25)  # monitoring only (3-digit numbers); not the held-out set
    last_stop = R["steps"] if args.steps is None else min(R["steps"], args.steps)
    snaps = [s for s in snapshot_steps() if s > run.step]
    acc_loss, acc_n, t0, t_chunk, chunk_start = 0.0, 0, time.time(), 0.0, run.step
    tok_per_s: list[float] = []

    def evaluate_now() -> tuple[float, float]:
        hl = heldout_loss(run.ema, args.data, R["seq"], dev, run.precision)
        with amp(dev, run.precision):
            acc = paren_accuracy(run.ema, tok, eval_prompts, dev)
        return hl, sum(acc[n]["acc_vocab"] for n in acc) / 4

    run.model.train()
    while run.step < last_stop:
        t_step = time.time()
        acc_loss += run.train_step(paren_ids, dev)
        acc_n += 1
        step = run.step
        dt = time.time() - t_step
        t_chunk += dt
        tok_per_s.append(R["batch"] * R["seq"] / dt)
        out_of_time = args.max_minutes is not None and t_chunk >= 60 * args.max_minutes
        row = None
        if step % args.log_every == 0 or step == last_stop or out_of_time:
            run.elapsed += time.time() - t0
            t0 = time.time()
            row = {"step": step, "tokens": step * R["batch"] * R["seq"], "lr": f"{lr_at(step - 1):.6g}",
                   "train_loss": f"{acc_loss / acc_n:.4f}", "heldout_loss": "", "authors_acc": "", "elapsed_s": f"{run.elapsed:.1f}"}
            acc_loss, acc_n = 0.0, 0
        if step % args.eval_every == 0 or step == R["steps"]:
            run.elapsed += time.time() - t0
            hl, acc = evaluate_now()
            row = row or {"step": step, "tokens": step * R["batch"] * R["seq"], "lr": f"{lr_at(step - 1):.6g}",
                          "train_loss": "", "elapsed_s": f"{run.elapsed:.1f}"}
            row.update(heldout_loss=f"{hl:.4f}", authors_acc=f"{acc:.3f}")
            t0 = time.time()  # evaluation time is not training time
        if row:
            with open(curve_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=FIELDS).writerow(row)
            print(row, f"{np.median(tok_per_s[-args.log_every:]):.0f} tok/s", flush=True)
        if snaps and step == snaps[0]:
            run.elapsed += time.time() - t0
            t0 = time.time()
            run.snapshots.append(save_snapshot(run.model, args, step, run.elapsed))
            snaps.pop(0)
            t0 = time.time()
        if out_of_time or step == last_stop or step % args.save_every == 0:
            if out_of_time or step == last_stop:
                run.chunks.append({"from_step": chunk_start, "to_step": step, "train_time_s": round(t_chunk, 1),
                                   "device": dev, "threads": torch.get_num_threads(), "precision": run.precision,
                                   "median_tokens_per_s": round(float(np.median(tok_per_s)), 1)})
            run.save(ckpt_path)
        if out_of_time:
            print(f"chunk done: {args.max_minutes} min of training, checkpoint at step {step}; continue with --resume")
            break

    info = write_info(run, args, n_params, tok_per_s)
    if run.step >= R["steps"]:
        final = os.path.join(args.out, "final")
        save_sharded(run.ema.state_dict(), final, torch.float32)
        run.model.config.to_json_file(os.path.join(final, "config.json"))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
