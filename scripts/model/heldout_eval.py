"""Held-out paren-closing evaluation of a model folder: writes <model>/heldout.json and heldout.md.

The prompts come from heldout.py (seven families, n = 1..4, numbers of 1..7 digits), which
training never sees (corpus.py fails when one occurs in training text) and which no recipe is
chosen on. Per prompt, at the last position, in float32 on the CPU:
- vocab: argmax over the whole vocabulary is the label `)` * n;
- four:  argmax over `)` `))` `)))` `))))` is the label;
- p_correct: softmax probability of the label over the vocabulary;
- ld_vocab: label logit minus the strongest other token's logit (> 0 iff vocab is right);
- ld_four:  label logit minus the strongest other paren run's logit.
Cells: (family, n) and (family, n, digits of the final number; 0 = the prompt ends with a name).
Targets (issue 15): authors' template >= 95 % vocab in every (n, digits) cell; every other
family >= 90 % among four in every n.

  .venv/bin/python scripts/model/heldout_eval.py [--model data/models/parenlens-code-6l] [--threads 1]
"""
import argparse
import json
import os
import statistics
import sys
from collections import Counter

import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import MODEL_DIR, PARENS  # noqa: E402
from heldout import FAMILIES, HELDOUT_SEED, heldout_prompts  # noqa: E402

TARGET_AUTHORS_VOCAB = 0.95
TARGET_OTHER_FOUR = 0.90


def encode_checked(tok: Tokenizer, prompts: list[dict]) -> list[list[int]]:
    """Prompt ids (with <s>); the label must be exactly the one next token."""
    out = []
    for x in prompts:
        ids = tok.encode(x["prompt"]).ids
        full = tok.encode(x["prompt"] + x["label"]).ids
        if full[:-1] != ids or full[-1] != tok.token_to_id(x["label"]):
            sys.exit(f"heldout_eval: label {x['label']!r} is not one token after {x['prompt']!r}")
        out.append(ids)
    return out


@torch.no_grad()
def score(model, tok: Tokenizer, prompts: list[dict], batch: int = 64) -> list[dict]:
    """One row per prompt: the prediction and its margins (see the module docstring)."""
    paren_ids = torch.tensor([tok.token_to_id(p) for p in PARENS])
    encs = encode_checked(tok, prompts)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encs):
        by_len.setdefault(len(ids), []).append(i)
    rows: list[dict] = [{} for _ in prompts]
    for idx in by_len.values():  # equal-length groups: no padding needed
        for s in range(0, len(idx), batch):
            chunk = idx[s:s + batch]
            logits = model(input_ids=torch.tensor([encs[i] for i in chunk])).logits[:, -1, :].float()  # [b, vocab]
            logp = logits.log_softmax(-1)  # [b, vocab]
            for j, i in enumerate(chunk):
                label = tok.token_to_id(prompts[i]["label"])
                lg = logits[j]  # [vocab]
                others = lg.clone()
                others[label] = -float("inf")
                four = lg[paren_ids]  # [4]
                k = PARENS.index(prompts[i]["label"])
                four_others = torch.cat([four[:k], four[k + 1:]])  # [3]
                pred = int(lg.argmax())
                rows[i] = {"pred": pred, "vocab": pred == label, "four": int(four.argmax()) == k,
                           "p_correct": float(logp[j, label].exp()), "ld_vocab": float(lg[label] - others.max()),
                           "ld_four": float(lg[label] - four_others.max())}
    return rows


def summarize(tok: Tokenizer, rows: list[dict]) -> dict:
    n = len(rows)
    wrong = Counter(tok.id_to_token(r["pred"]) for r in rows if not r["vocab"])
    top = wrong.most_common(1)
    return {"prompts": n,
            "acc_vocab": round(sum(r["vocab"] for r in rows) / n, 4),
            "acc_four": round(sum(r["four"] for r in rows) / n, 4),
            "mean_p_correct": round(statistics.fmean(r["p_correct"] for r in rows), 4),
            "median_ld_vocab": round(statistics.median(r["ld_vocab"] for r in rows), 3),
            "p05_ld_vocab": round(sorted(r["ld_vocab"] for r in rows)[int(0.05 * (n - 1))], 3),
            "median_ld_four": round(statistics.median(r["ld_four"] for r in rows), 3),
            "top_wrong": {"token": top[0][0], "share_of_prompts": round(top[0][1] / n, 4)} if top else None}


def cells(tok: Tokenizer, prompts: list[dict], rows: list[dict]) -> dict:
    """{family: {"per_n": {n: summary}, "per_n_digits": {n: {digits: summary}}}}."""
    out: dict = {}
    for fam in FAMILIES:
        per_n, per_nd = {}, {}
        for n in range(1, 5):
            sel = [i for i, x in enumerate(prompts) if x["family"] == fam and x["n"] == n]
            per_n[str(n)] = summarize(tok, [rows[i] for i in sel])
            per_nd[str(n)] = {str(d): summarize(tok, [rows[i] for i in sel if prompts[i]["digits"] == d])
                              for d in sorted({prompts[i]["digits"] for i in sel})}
        example = {str(n): next(x["prompt"] + "⟨" + x["label"] + "⟩" for x in prompts if x["family"] == fam and x["n"] == n)
                   for n in range(1, 5)}
        out[fam] = {"per_n": per_n, "per_n_digits": per_nd, "examples": example}
    return out


def targets(res: dict) -> list[dict]:
    """Every target cell with its value and whether it is met."""
    out = []
    for fam, r in res.items():
        for n, byd in r["per_n_digits"].items():
            if fam == "authors":
                out += [{"family": fam, "n": int(n), "digits": int(d), "metric": "acc_vocab", "target": TARGET_AUTHORS_VOCAB,
                         "value": s["acc_vocab"], "met": s["acc_vocab"] >= TARGET_AUTHORS_VOCAB} for d, s in byd.items()]
        if fam != "authors":
            out += [{"family": fam, "n": int(n), "digits": None, "metric": "acc_four", "target": TARGET_OTHER_FOUR,
                     "value": s["acc_four"], "met": s["acc_four"] >= TARGET_OTHER_FOUR} for n, s in r["per_n"].items()]
    return out


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(out: dict) -> str:
    res = out["families"]
    lines = [f"# Held-out paren closing: {out['model']}", "",
             f"Written by `scripts/model/heldout_eval.py` (seed {out['seed']}, {out['prompts']} prompts, float32, CPU). "
             "vocab / four: accuracy (%) of the argmax over the whole vocabulary / over `)` `))` `)))` `))))`; "
             "p: mean probability of the label; LD: median logit difference label − strongest wrong token "
             "(vocabulary; four: among the paren runs); p5 LD: its 5th percentile. Families and prompts: `scripts/model/heldout.py`.", "",
             "## Per family and n", "",
             "| family | n | prompts | vocab | four | p | LD (vocab) | p5 LD (vocab) | LD (four) | most frequent wrong token |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for fam, r in res.items():
        for n, s in r["per_n"].items():
            tw = f"`{s['top_wrong']['token']}` ({pct(s['top_wrong']['share_of_prompts'])} %)" if s["top_wrong"] else "–"
            lines.append(f"| {fam} | {n} | {s['prompts']} | {pct(s['acc_vocab'])} | {pct(s['acc_four'])} | {s['mean_p_correct']:.3f} "
                         f"| {s['median_ld_vocab']:.2f} | {s['p05_ld_vocab']:.2f} | {s['median_ld_four']:.2f} | {tw} |")
    for fam, r in res.items():
        digits = sorted({int(d) for byd in r["per_n_digits"].values() for d in byd})
        head = ["name" if d == 0 else f"{d} dig." for d in digits]
        lines += ["", f"## {fam}: vocab % / four % by the final number's length" + (" (name: ends with a name)" if 0 in digits else ""), "",
                  "| n | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for n, byd in r["per_n_digits"].items():
            lines.append(f"| {n} | " + " | ".join(f"{pct(byd[str(d)]['acc_vocab'])} / {pct(byd[str(d)]['acc_four'])}"
                                                 if str(d) in byd else "–" for d in digits) + " |")
    t = out["targets"]
    missed = [x for x in t if not x["met"]]
    lines += ["", f"## Targets (issue 15): {len(t) - len(missed)} of {len(t)} cells met", "",
              f"authors' template ≥ {pct(TARGET_AUTHORS_VOCAB)} % vocab in every (n, digits) cell; other families ≥ "
              f"{pct(TARGET_OTHER_FOUR)} % among four for every n. Missed: "
              + (", ".join(f"{x['family']} n={x['n']}" + (f" {x['digits']} dig." if x["digits"] else "") + f" ({pct(x['value'])} %)"
                           for x in missed) or "none") + ".", "",
              "## Examples (label in ⟨⟩)", ""]
    for fam, r in res.items():
        lines.append(f"- {fam}: `{r['examples']['3']!r}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=MODEL_DIR)
    ap.add_argument("--out", default=None, help="folder for heldout.json/.md (default: the model folder)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    prompts = heldout_prompts()
    rows = score(model, tok, prompts)
    res = cells(tok, prompts, rows)
    out = {"model": os.path.basename(os.path.normpath(args.model)), "seed": HELDOUT_SEED, "prompts": len(prompts),
           "dtype": "float32", "device": "cpu", "families": res}
    out["targets"] = targets(res)
    out["all_targets_met"] = all(x["met"] for x in out["targets"])
    dst = args.out or args.model
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "heldout.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    md = markdown(out)
    with open(os.path.join(dst, "heldout.md"), "w") as fh:
        fh.write(md)
    print(md)


if __name__ == "__main__":
    main()
