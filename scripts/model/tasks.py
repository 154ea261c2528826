"""The paren-closing task: prompt sets and the accuracy measure (used by train.py and evaluate.py).

A prompt is code with n unclosed `(`; the label is the single token `)` * n (n = 1..4). Accuracy
"among four" = argmax over the four paren-run tokens equals the label; "vocab" = argmax over the
whole vocabulary equals the label. Everything is seeded. The held-out templates use identifiers
and layouts that the training generator (generate.py) never produces.
"""
import random

import torch

from common import PARENS, authors_prompt

# identifiers absent from generate.py's lists
RECEIVERS = ["session", "codec", "frame", "ledger", "vault", "broker", "widget", "canvas", "router", "tracker"]
METHODS = ["dispatch", "pack", "seal", "stamp", "route_to", "publish", "inscribe", "attach", "shelve", "enqueue"]
FUNCS = ["purge", "tally", "cluster", "blend", "weigh", "mix", "trim", "squash", "glue", "tint", "knead", "sift"]
ARGS = ["alpha", "beta", "gamma", "delta", "payload", "header", "quota", "epsilon", "cursor", "anchor"]
PARAMS = ["records", "limit", "source", "batch", "target", "window"]


def authors_set(seed: int, count: int) -> list[tuple[str, str, int]]:
    """The authors' template `#print the string N` / `print(str(...N` with random 3-digit N."""
    r = random.Random(seed)
    out = []
    for n in range(1, 5):
        for _ in range(count):
            p, l = authors_prompt(r.randint(100, 999), n)
            out.append((p, l, n))
    return out


def method_args_set(seed: int, count: int) -> list[tuple[str, str, int]]:
    """Method calls with several arguments: `reply = session.dispatch(alpha, codec.pack(beta, 417`."""
    r = random.Random(seed)
    out = []
    for n in range(1, 5):
        for _ in range(count):
            s = f"{r.choice(['reply', 'status', 'ok', 'handle'])} = "
            for level in range(n):
                extra = ", ".join(r.sample(ARGS, r.randint(1, 2)))
                s += f"{r.choice(RECEIVERS)}.{r.choice(METHODS)}({extra}, "
            s += str(r.randint(100, 999))
            out.append((s, ")" * n, n))
    return out


def function_body_set(seed: int, count: int) -> list[tuple[str, str, int]]:
    """Calls inside a function body, after a first statement: `def f(records):\\n    x = ...\\n    return a(b(records`."""
    r = random.Random(seed)
    out = []
    for n in range(1, 5):
        for _ in range(count):
            p = r.sample(PARAMS, 2)
            fs = [r.choice(FUNCS) for _ in range(n)]
            s = (f"def {r.choice(['summarize', 'digest', 'prepare', 'settle'])}({p[0]}, {p[1]}):\n"
                 f"    {r.choice(['cleaned', 'staged', 'kept'])} = {r.choice(FUNCS)}({p[1]})\n"
                 f"    {r.choice(['return ', 'outcome = ', 'yield '])}" + "".join(f + "(" for f in fs) + p[0])
            out.append((s, ")" * n, n))
    return out


def partly_closed_set(seed: int, count: int) -> list[tuple[str, str, int]]:
    """Partly-closed calls: closed calls sit before the open ones, `total = blend(weigh(alpha), mix(trim(beta, 3), gamma`."""
    r = random.Random(seed)
    out = []
    for n in range(1, 5):
        for _ in range(count):
            s = f"{r.choice(['total', 'mixed', 'score'])} = "
            closed_somewhere = False
            for level in range(n):
                s += f"{r.choice(FUNCS)}("
                if r.random() < 0.6 or (level == n - 1 and not closed_somewhere):
                    depth = r.randint(1, 2)
                    s += "".join(f"{r.choice(FUNCS)}(" for _ in range(depth)) + f"{r.choice(ARGS)}, {r.randint(1, 9)}" + ")" * depth + ", "
                    closed_somewhere = True
            s += r.choice(ARGS)
            out.append((s, ")" * n, n))
    return out


TEMPLATES = {
    "authors": authors_set,
    "method_args": method_args_set,
    "function_body": function_body_set,
    "partly_closed": partly_closed_set,
}


@torch.no_grad()
def paren_accuracy(model, tok, prompts: list[tuple[str, str, int]], device: str, batch: int = 64) -> dict:
    """Per n: accuracy among the four paren tokens and over the vocabulary (argmax at the last position)."""
    paren_ids = [tok.token_to_id(p) for p in PARENS]
    encs = [tok.encode(p).ids for p, _, _ in prompts]  # with <s>
    for (p, l, _), ids in zip(prompts, encs):  # the label must be exactly one token after the prompt
        full = tok.encode(p + l).ids
        assert full[:-1] == ids and full[-1] == tok.token_to_id(l), (p, l)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encs):
        by_len.setdefault(len(ids), []).append(i)
    pred4, predv = [0] * len(prompts), [0] * len(prompts)
    for idx in by_len.values():  # equal-length groups: no padding needed
        for s in range(0, len(idx), batch):
            chunk = idx[s:s + batch]
            x = torch.tensor([encs[i] for i in chunk], device=device)
            logits = model(input_ids=x).logits[:, -1, :].float()  # [batch, vocab]
            p4 = logits[:, paren_ids].argmax(-1).tolist()
            pv = logits.argmax(-1).tolist()
            for j, i in enumerate(chunk):
                pred4[i], predv[i] = paren_ids[p4[j]], pv[j]
    res = {}
    for n in range(1, 5):
        rows = [i for i, (_, _, m) in enumerate(prompts) if m == n]
        label = tok.token_to_id(")" * n)
        res[n] = {"n_prompts": len(rows),
                  "acc_among_four": sum(pred4[i] == label for i in rows) / max(1, len(rows)),
                  "acc_vocab": sum(predv[i] == label for i in rows) / max(1, len(rows))}
    return res
