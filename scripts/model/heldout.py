"""Held-out paren-closing prompts (never trained on, never used to choose a recipe) + the leak check.

Six families, each prompt ending inside n = 1..4 open calls (label: the single token `)` * n):

- authors:          `#print the string N` / `print(` + (n-1) × `str(` + `N`, N of every length 1..7
- partial:          the notebooks' partly-closed template (closed `str(...)` arguments, then an open one)
- complex:          the notebooks' complex template (assignments/returns, varied callees, closed arguments)
- nested_builtins:  `kept = len(sorted(set(votes`
- def_body:         calls inside a `def` body after a docstring and a first statement
- method_chain:     `out = ledger.strip().replace(a, b).join(sorted(votes`  (closed chain, open tail)

Numbers are drawn with an exact number of digits (1..7) so every family can be read per length.
The identifiers below appear in no list of generate.py. Seeds differ from every seed that
training (train.py's monitor, seed 999), recipe selection (select_run.py, 31337) and
evaluate.py (2025) use. `assert_no_leak` fails when any held-out prompt, followed by its label,
occurs verbatim in training text; corpus.py calls it on everything it writes for training.

CLI: .venv/bin/python scripts/model/heldout.py --check   (checks tmp/model/.../corpus/*.txt)
"""
import argparse
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import CORPUS_DIR, DOC_SEP, authors_prompt  # noqa: E402

HELDOUT_SEED = 15_015
DIGITS = range(1, 8)
NS = range(1, 5)
PER_CELL_AUTHORS = 100       # per (n, number length)
PER_CELL_PARTIAL = 40        # per (n, number length)
PER_N_OTHER = 280            # per n, number lengths spread over the prompts

# identifiers absent from generate.py (both generator styles) and from tasks.py
H_NAMES = ["votes", "pebbles", "lanterns", "tags_seen", "orchard", "quills", "ballots", "marbles", "embers", "tiles"]
H_FUNCS = ["gather", "polish", "ripen", "sprout", "braid", "stitch", "winnow", "temper", "harvest", "prune"]
H_RECV = ["ledger", "kiln", "loom", "granary", "foundry", "atelier", "apiary", "quarry"]
H_METHODS = ["stow", "hoist", "ferment", "churn", "glaze", "thresh", "whittle", "tether"]
CHAIN_METHODS = ["strip()", "lower()", "upper()", "copy()", "replace({a}, {b})", "split({a})", "rstrip({a})",
                 "encode({a})", "decode()", "items()", "keys()", "get({a}, {b})", "format({a})"]
SPINE_BUILTINS = ["len", "sorted", "set", "list", "tuple", "sum", "max", "min", "abs", "str", "repr",
                  "reversed", "enumerate", "frozenset", "int", "float", "bool", "any", "all", "iter"]
# held-out assignment targets only: `yield max(6` / `assert all(4` also occur in generated text
STATEMENTS = ["kept = ", "tally_out = ", "ember_total = ", "quill_count = ", "spread = ", "self.kept = "]
TWO_ARG_CALLS = ["max(", "min(", "zip("]          # as lib/src/task/prompt-templates.ts
COMPLEX_SPINE = ["len", "str", "int", "abs", "max", "min", "sorted", "list", "sum", "round", "float", "tuple",
                 "set", "print", "repr", "enumerate", "np.array", "os.path.join", "json.dumps", "math.sqrt",
                 "self.process", "get_value", "parse_item", "helper.run"]
COMPLEX_LEAF = ["len", "str", "int", "abs", "float", "repr", "get_key", "self.size"]
# the notebooks' template with held-out names (its own names also occur in generated training text)
COMPLEX_NAMES = H_NAMES + ["self.quills", "config.ember_cap"]
COMPLEX_STRINGS = ["'a'", "'id'", "'name'", '"x"', "'utf-8'", "'%s'"]


def number(r: random.Random, digits: int) -> int:
    """A number with exactly `digits` digits (0..9 for one digit)."""
    return r.randint(0, 9) if digits == 1 else r.randint(10 ** (digits - 1), 10 ** digits - 1)


def item(family: str, prompt: str, n: int, digits: int) -> dict:
    """digits: the length of the number the prompt ends with (0: it ends with a name)."""
    return {"family": family, "prompt": prompt, "label": ")" * n, "n": n, "digits": digits}


def final_arg(r: random.Random, names: list[str]) -> tuple[str, int]:
    """The open argument: half the time a held-out name, else a number of 1..7 digits."""
    if r.random() < 0.5:
        return r.choice(names), 0
    d = r.choice(list(DIGITS))
    return str(number(r, d)), d


def authors(r: random.Random) -> list[dict]:
    out = []
    for n in NS:
        for d in DIGITS:
            for _ in range(PER_CELL_AUTHORS):
                p, _ = authors_prompt(number(r, d), n)
                out.append(item("authors", p, n, d))
    return out


def partial(r: random.Random) -> list[dict]:
    """lib/src/task/prompt-templates.ts PARTIAL_TEMPLATE, numbers of 1..7 digits (last one: `d`)."""
    out = []
    for n in NS:
        for d in DIGITS:
            for _ in range(PER_CELL_PARTIAL):
                a = r.randint(0, n - 1)
                b = n - 1 - a
                args, values = [], []
                for _ in range(r.randint(1, 2)):
                    depth, v = r.randint(1, 3), number(r, r.choice(list(DIGITS)))
                    values.append(v)
                    args.append("str(" * depth + str(v) + ")" * depth)
                last = number(r, d)
                outer = "".join(r.choice(TWO_ARG_CALLS) for _ in range(a))
                comment = f"#print the strings {', '.join(map(str, values))} and {last}"
                out.append(item("partial", f"{comment}\nprint({outer}{', '.join(args)}, {'str(' * b}{last}", n, d))
    return out


def complex_closed_arg(r: random.Random, depth_left: int) -> str:
    x = r.random()
    if x < 0.3:
        return r.choice(COMPLEX_NAMES)
    if x < 0.45:
        return str(number(r, r.choice(list(DIGITS))))
    if x < 0.55:
        return r.choice(COMPLEX_STRINGS)
    if depth_left <= 0:
        return r.choice(COMPLEX_NAMES)
    inner = complex_closed_arg(r, depth_left - 1) if r.random() < 0.5 else f"{r.choice(COMPLEX_NAMES)}, {r.randint(1, 99)}"
    return f"{r.choice(COMPLEX_LEAF)}({inner})"


def complex_(r: random.Random) -> list[dict]:
    """lib/src/task/prompt-templates.ts COMPLEX_TEMPLATE with held-out statement targets and names
    (its own, `result = len(items`, also occur in generated training text), final number of 1..7 digits."""
    out = []
    for n in NS:
        for _ in range(PER_N_OTHER):
            in_def = r.random() < 0.4
            stmt = r.choice(STATEMENTS + (["return "] if in_def else []))
            code = ""
            for _ in range(n):
                code += r.choice(COMPLEX_SPINE) + "("
                for _ in range(0 if r.random() < 0.5 else r.randint(1, 2)):
                    code += complex_closed_arg(r, 2) + ", "
            last, d = final_arg(r, [s for s in COMPLEX_NAMES if len(s) >= 2])
            head = f"def compute(self, {r.choice([s for s in COMPLEX_NAMES if '.' not in s])}):\n    " if in_def else ""
            out.append(item("complex", head + stmt + code + last, n, d))
    return out


def nested_builtins(r: random.Random) -> list[dict]:
    out = []
    for n in NS:
        for _ in range(PER_N_OTHER):
            spine = "".join(b + "(" for b in r.sample(SPINE_BUILTINS, n))
            last, d = final_arg(r, H_NAMES)
            out.append(item("nested_builtins", r.choice(STATEMENTS) + spine + last, n, d))
    return out


def callee(r: random.Random) -> str:
    x = r.random()
    if x < 0.4:
        return r.choice(H_FUNCS)
    if x < 0.7:
        return f"{r.choice(H_RECV)}.{r.choice(H_METHODS)}"
    return r.choice(SPINE_BUILTINS)


def def_body(r: random.Random) -> list[dict]:
    out = []
    for n in NS:
        for _ in range(PER_N_OTHER):
            p0, p1 = r.sample(H_NAMES, 2)
            head = (f"def {r.choice(H_FUNCS)}_{r.choice(H_NAMES)}({p0}, {p1}):\n"
                    f"    \"\"\"{r.choice(['Return', 'Collect', 'Count'])} the {p0}.\"\"\"\n"
                    f"    {r.choice(['staged', 'spare', 'first'])} = {r.choice(H_FUNCS)}({p1}, {number(r, r.choice(list(DIGITS)))})\n"
                    f"    {r.choice(['return ', 'yield ', 'result = '])}")
            spine = ""
            for level in range(n):
                spine += callee(r) + "("
                if level < n - 1 and r.random() < 0.3:
                    spine += r.choice([p1, str(number(r, r.choice(list(DIGITS))))]) + ", "
            last, d = final_arg(r, [p0])
            out.append(item("def_body", head + spine + last, n, d))
    return out


def method_chain(r: random.Random) -> list[dict]:
    out = []
    for n in NS:
        for _ in range(PER_N_OTHER):
            a, b = r.sample(H_NAMES, 2)
            chain = ".".join(m.format(a=a, b=b) for m in r.sample(CHAIN_METHODS, r.randint(1, 3)))
            s = f"{r.choice(['out', 'cleaned', 'self.kept'])} = {r.choice(H_RECV)}.{chain}.{r.choice(H_METHODS)}("
            s += "".join(callee(r) + "(" for _ in range(n - 1))
            last, d = final_arg(r, H_NAMES)
            out.append(item("method_chain", s + last, n, d))
    return out


FAMILIES = {"authors": authors, "partial": partial, "complex": complex_, "nested_builtins": nested_builtins,
            "def_body": def_body, "method_chain": method_chain}


def heldout_prompts(seed: int = HELDOUT_SEED) -> list[dict]:
    """Every held-out prompt, deterministic for the seed (each family its own PRNG)."""
    out = []
    for i, make in enumerate(FAMILIES.values()):
        out += make(random.Random(seed * 100 + i))
    return out


# --- leak check -----------------------------------------------------------------------------------
WINDOW = 12   # characters per rolling-hash window
BASE = np.uint64(1_000_003)


def window_hashes(b: np.ndarray) -> np.ndarray:
    """Polynomial hash (mod 2^64) of every WINDOW-byte window of b: [len(b) - WINDOW + 1] uint64."""
    m = max(0, len(b) - WINDOW + 1)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(WINDOW):
            h = h * BASE + b[j:j + m].astype(np.uint64)
    return h


def leaks(prompts: list[str], docs: list[str], chunk_chars: int = 8_000_000) -> list[str]:
    """The prompts that occur verbatim in any of docs. Exact: per chunk of the joined text (chunks
    overlap by the longest prompt, so an occurrence lies inside one chunk), a prompt whose every
    WINDOW-byte window hashes into the chunk's windows is searched with str.find."""
    text = DOC_SEP.join(docs)
    longest = max(len(p) for p in prompts)
    hashed = [(p, window_hashes(np.frombuffer(p.encode("utf-8"), dtype=np.uint8)) if len(p.encode()) >= WINDOW else None)
              for p in prompts]
    found: set[str] = set()
    for start in range(0, max(1, len(text)), chunk_chars):
        chunk = text[start:start + chunk_chars + longest]
        hashes = np.unique(window_hashes(np.frombuffer(chunk.encode("utf-8"), dtype=np.uint8)))
        for p, ph in hashed:
            if p in found:
                continue
            if ph is not None:
                if len(hashes) == 0:  # chunk shorter than a window
                    continue
                pos = np.minimum(np.searchsorted(hashes, ph), len(hashes) - 1)
                if not np.all(hashes[pos] == ph):
                    continue
            if p in chunk:
                found.add(p)
    return [p for p in prompts if p in found]


def assert_no_leak(docs: list[str], what: str) -> None:
    """Fail the pipeline when a held-out prompt followed by its label (the graded text) occurs in training text."""
    bad = leaks([x["prompt"] + x["label"] for x in heldout_prompts()], docs)
    if bad:
        sys.exit(f"heldout: {len(bad)} held-out prompts occur in the training text ({what}), e.g. {bad[:3]!r}")
    print(f"heldout: none of the {len(heldout_prompts())} held-out prompts occurs in {what}")


HELDOUT_WORDS = set(H_NAMES + H_FUNCS + H_RECV + H_METHODS + ["kept", "tally_out", "ember_total", "quill_count",
                                                            "spread", "quills", "ember_cap"])


def check_construction() -> None:
    """Every prompt carries an identifier that no generator list holds, or the authors' comment
    (which training text never contains): v1 text (parenlens-code-6l) cannot hold a prompt either."""
    import re

    from common import contains_forbidden
    from generate import BUILTINS, FUNCS, KWARGS, METHODS, MODULES, NAMES, OBJECTS, TARGETS, WORDS
    lists = set(NAMES + FUNCS + OBJECTS + METHODS + TARGETS + KWARGS + MODULES + BUILTINS + WORDS)
    assert not HELDOUT_WORDS & lists, HELDOUT_WORDS & lists
    bad = [x["prompt"] for x in heldout_prompts()
           if not contains_forbidden(x["prompt"]) and not set(re.findall(r"[A-Za-z_]\w*", x["prompt"])) & HELDOUT_WORDS]
    assert not bad, f"held-out prompts without a held-out identifier: {bad[:3]}"
    print("heldout: every prompt holds a held-out identifier or the authors' comment")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="check the corpus text under --corpus")
    ap.add_argument("--corpus", default=CORPUS_DIR)
    ap.add_argument("--show", type=int, default=0, help="print this many prompts per family")
    args = ap.parse_args()
    if args.show:
        ps = heldout_prompts()
        for fam in FAMILIES:
            fam_ps = [x for x in ps if x["family"] == fam]
            for x in fam_ps[:: max(1, len(fam_ps) // args.show)][: args.show]:
                print(fam, x["n"], x["digits"], repr(x["prompt"] + "⟨" + x["label"] + "⟩"))
    if args.check:
        check_construction()
        for name in ["real", "generated"]:
            with open(os.path.join(args.corpus, f"{name}.txt"), encoding="utf-8") as fh:
                assert_no_leak(fh.read().split(DOC_SEP), name)


if __name__ == "__main__":
    main()
