"""Step 3: tokenize the corpus once into compact arrays (tmp/model/data/, carried to a GPU machine).

data.json records per split the documents, tokens and the sha256 of the id stream (a GPU machine
that re-tokenizes carried text checks it against the one made here: gpu_train.sh).
Each document becomes <s> + its ids; a split is <name>.npz holding `ids` (one uint16 stream) and
`starts` (int64 offset of every document). Held-out real code (CPython's Lib/test) is cut to HELDOUT_TOKENS tokens.
"""
import argparse
import hashlib
import json
import os

import numpy as np
from tokenizers import Tokenizer

from common import CORPUS_DIR, DATA_DIR, DOC_SEP, TOKENIZER_DIR

HELDOUT_TOKENS = 400_000


def encode(tok: Tokenizer, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ids, starts, pos = [], [], 0
    for i in range(0, len(docs), 2000):
        for enc in tok.encode_batch(docs[i:i + 2000]):  # adds <s>
            starts.append(pos)
            ids.append(np.asarray(enc.ids, dtype=np.uint16))
            pos += len(enc.ids)
    return np.concatenate(ids), np.asarray(starts, dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", nargs="+", default=["real", "generated", "heldout"],
                    help="the splits to tokenize (a GPU machine re-tokenizes real and generated only)")
    args = ap.parse_args()
    tok = Tokenizer.from_file(os.path.join(TOKENIZER_DIR, "tokenizer.json"))
    assert tok.get_vocab_size() < 65536
    os.makedirs(DATA_DIR, exist_ok=True)
    info = {}
    for name in args.splits:
        with open(os.path.join(CORPUS_DIR, f"{name}.txt"), encoding="utf-8") as fh:
            docs = fh.read().split(DOC_SEP)
        ids, starts = encode(tok, docs)
        if name == "heldout":
            keep = starts < HELDOUT_TOKENS
            starts = starts[keep]
            ids = ids[:HELDOUT_TOKENS]
        # compressed: the folder travels to a GPU machine (64 MiB limit with the working tree)
        np.savez_compressed(os.path.join(DATA_DIR, f"{name}.npz"), ids=ids, starts=starts)
        chars = sum(len(d) for d in docs)
        info[name] = {"docs": int(len(starts)), "tokens": int(len(ids)), "chars_per_token": round(chars / len(ids), 3) if name != "heldout" else None,
                      "ids_sha256": hashlib.sha256(ids.astype("<u2").tobytes()).hexdigest()}
        print(name, info[name])
    with open(os.path.join(DATA_DIR, "data.json"), "w") as fh:
        json.dump(info, fh, indent=1)


if __name__ == "__main__":
    main()
