"""Build the small Llama-style test tokenizer in test/fixtures/tokenizer/ with HF `tokenizers`.

Llama layout: <unk>=0, <s>=1, </s>=2, byte-fallback tokens <0x00>..<0xFF> = 3..258, then BPE
merges learned on a few KB of generated Python text. Pre-tokenizer: Metaspace ("▁" for spaces,
prepended to the first word) then runs of parentheses split off; decoder: ▁→space, byte fallback, fuse, strip the leading space; BOS added
by the post-processor. `)`, `))`, `)))`, `))))` are single tokens (merges added if training did
not find them). Also writes expected-ids.json: Python's encodings of a few strings, for the TS test.

Run: .venv/bin/python scripts/golden/make_test_tokenizer.py
"""
import json
import os
import random

from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "tokenizer")
VOCAB_SIZE = 512
SPECIALS = ["<unk>", "<s>", "</s>"]
BYTES = [f"<0x{b:02X}>" for b in range(256)]
PARENS = [")", "))", ")))", "))))"]


def corpus() -> list[str]:
    """A few KB of Python-like text with nested calls, deterministic (seeded)."""
    rng = random.Random(0)
    names = ["print", "len", "str", "int", "sorted", "list", "range", "sum", "max", "min", "abs", "f", "g", "h", "foo", "bar"]
    args = ["x", "y", "i", "n", "data", "items", "value", "0", "1", "2", "10", "'a'", "\"b\""]
    lines = [
        "def add(a, b):\n    return a + b\n",
        "for i in range(10):\n    print(i)\n",
        "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
        "if __name__ == \"__main__\":\n    main()\n",
        "import os\nimport sys\nfrom typing import List, Dict\n",
        "result = [x * x for x in range(n) if x % 2 == 0]\n",
        "with open(path) as fh:\n    text = fh.read()\n",
    ]
    for _ in range(160):
        depth = rng.randint(1, 4)
        calls = [rng.choice(names) for _ in range(depth)]
        expr = "".join(c + "(" for c in calls) + rng.choice(args) + ")" * depth
        target = rng.choice(["y", "z", "out", "total", "res"])
        lines.append(f"{target} = {expr}\n" if rng.random() < 0.6 else f"    {expr}\n")
    return lines


def build() -> Tokenizer:
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Metaspace splits at spaces (as SentencePiece does: no merge crosses a word start); runs of
    # parentheses are split off so that "))" etc. are learned but "print(" is not one token.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
        pre_tokenizers.Split(Regex(r"\(+|\)+"), behavior="isolated"),
    ])
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    trainer = BpeTrainer(vocab_size=VOCAB_SIZE - len(BYTES), special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)

    # Re-number Llama style: specials, then the 256 byte tokens, then the learned vocabulary.
    model = json.loads(tok.to_str())
    learned = sorted(model["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["model"]["merges"]]
    vocab: dict[str, int] = {}
    for t in SPECIALS + BYTES:
        vocab[t] = len(vocab)
    for t, _ in learned:
        if t not in vocab:
            vocab[t] = len(vocab)
    # The closing-paren tokens the study needs, each produced by a merge.
    for a, b in [(")", ")"), ("))", ")"), ("))", "))")]:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    for p in PARENS:
        assert p in vocab, p
    model["model"]["vocab"] = vocab
    model["model"]["merges"] = [list(m) for m in merges]
    model["added_tokens"] = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, t in enumerate(SPECIALS)
    ]
    tok = Tokenizer.from_str(json.dumps(model))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tok


TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer",
    "add_bos_token": True,
    "add_eos_token": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "legacy": True,
    "model_max_length": 2048,
}

SAMPLES = [
    "print(str(x))",
    "print(str(",
    "x = 1</s>",
    "y = f(g(h(foo(1))))",
    "def add(a, b):\n    return a + b",
    "  total = sum(len(items)))",
    "naïve café ✓ 日本",  # bytes outside the training text: byte fallback
    "",
]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    tok = build()
    tok.save(os.path.join(OUT, "tokenizer.json"))
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as fh:
        json.dump(TOKENIZER_CONFIG, fh, indent=2)
        fh.write("\n")
    expected = []
    for s in SAMPLES:
        enc = tok.encode(s)  # with <s>
        plain = tok.encode(s, add_special_tokens=False)
        expected.append({"text": s, "ids": enc.ids, "ids_no_bos": plain.ids, "tokens": plain.tokens,
                         "decoded": tok.decode(plain.ids, skip_special_tokens=False)})
    paren_ids = {p: tok.token_to_id(p) for p in PARENS}
    with open(os.path.join(OUT, "expected-ids.json"), "w") as fh:
        json.dump({"vocab_size": tok.get_vocab_size(), "parens": paren_ids, "samples": expected}, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print("vocab", tok.get_vocab_size(), "parens", paren_ids)
    for e in expected:
        print(repr(e["text"]), e["tokens"])


if __name__ == "__main__":
    main()
