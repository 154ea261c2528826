"""Step 2: a Llama-family byte-fallback BPE tokenizer (HF `tokenizers`), saved into the model folder.

Layout as Llama: <unk>=0, <s>=1, </s>=2, byte tokens <0x00>..<0xFF> = 3..258, then learned BPE.
Pre-tokenization: Metaspace ("▁" for spaces, prepended to the first section, no split at spaces —
which is also what @huggingface/transformers' Metaspace does), then runs of `(` or `)` and newlines
and single digits (as CodeLlama) are split off. So `)`, `))`, `)))`, `))))` are single tokens and never merge with `:`, `,` or
anything else, and indentation can be learned as whole tokens. BOS is added by the post-processor.
Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json.
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

from common import CORPUS_DIR, DOC_SEP, MODEL_DIR, MODEL_NAME, PARENS, RECIPE_SPEC, SPECIALS, TOKENIZER_DIR, authors_prompt

VOCAB_SIZE = 3072
N_GENERATED_FOR_TRAINING = 30_000
BYTES = [f"<0x{b:02X}>" for b in range(256)]

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
SPECIAL_TOKENS_MAP = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
        pre_tokenizers.Split(Regex(r"\(+|\)+|\n|[0-9]"), behavior="isolated"),
    ])


def train() -> Tokenizer:
    with open(os.path.join(CORPUS_DIR, "real.txt"), encoding="utf-8") as fh:
        real = fh.read().split(DOC_SEP)
    with open(os.path.join(CORPUS_DIR, "generated.txt"), encoding="utf-8") as fh:
        gen = fh.read().split(DOC_SEP)[:N_GENERATED_FOR_TRAINING]
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    trainer = BpeTrainer(vocab_size=VOCAB_SIZE - len(BYTES), special_tokens=SPECIALS, show_progress=False,
                         max_token_length=16)
    tok.train_from_iterator(real + gen, trainer=trainer)

    # Re-number Llama style: specials, the 256 byte tokens, then the learned vocabulary in order.
    model = json.loads(tok.to_str())
    learned = sorted(model["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["model"]["merges"]]
    # Runs of 5+ parens would compete with the four study tokens: `)))))` becomes `))` + `)))` etc.
    too_long = {t for t, _ in learned if len(t) > 4 and (set(t) == {")"} or set(t) == {"("})}
    learned = [(t, i) for t, i in learned if t not in too_long]
    merges = [m for m in merges if m[0] + m[1] not in too_long]
    vocab: dict[str, int] = {}
    for t in SPECIALS + BYTES:
        vocab[t] = len(vocab)
    for t, _ in learned:
        if t not in vocab:
            vocab[t] = len(vocab)
    for a, b in [(")", ")"), ("))", ")"), ("))", "))")]:  # the paren runs the study needs
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    model["model"]["vocab"] = vocab
    model["model"]["merges"] = [list(m) for m in merges]
    model["added_tokens"] = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, t in enumerate(SPECIALS)
    ]
    tok = Tokenizer.from_str(json.dumps(model))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def check(tok: Tokenizer) -> None:
    """The paren runs are single tokens in every context the study uses; fail the build otherwise."""
    ids = {p: tok.token_to_id(p) for p in PARENS}
    assert all(i is not None for i in ids.values()), ids
    assert tok.get_vocab_size() <= 4096
    for t in tok.get_vocab():
        if ")" in t or "(" in t:
            assert set(t) <= {")"} or set(t) <= {"("}, f"paren merged with other text: {t!r}"
            assert len(t) <= 4, f"paren run longer than 4: {t!r}"
    cases = [("print(str(str(123)))", ")))"), ("x = f(g(a), h(b))", "))"), ("if f(g(x)):", ":"),
             ("return a.b(c, d(e(1))))", "))))"), ("y = f(x)),", ","), ("    z = g(h(k(1, 2), 3)):\n", "\n")]
    for n in range(1, 5):
        prompt, label = authors_prompt(123, n)
        cases.append((prompt + label, label))
    for text, last in cases:
        enc = tok.encode(text, add_special_tokens=False)
        assert enc.tokens[-1] == last.replace(" ", "▁"), (text, enc.tokens)
        if not text.startswith(" "):  # Llama's decoder strips one leading space
            assert tok.decode(enc.ids) == text, (text, tok.decode(enc.ids))
    for k in range(5, 9):  # longer runs split into the four study tokens
        enc = tok.encode("f(" * k + "1" + ")" * k, add_special_tokens=False)
        assert "".join(enc.tokens[-3:]).endswith(")" * k) and all(len(t) <= 4 for t in enc.tokens), enc.tokens


def main() -> None:
    if RECIPE_SPEC["tokenizer"] != "own":
        print(f"tokenizer: recipe {MODEL_NAME} reuses {TOKENIZER_DIR}/tokenizer.json (export.py copies it)")
        return
    tok = train()
    check(tok)
    os.makedirs(MODEL_DIR, exist_ok=True)
    tok.save(os.path.join(MODEL_DIR, "tokenizer.json"))
    for name, obj in [("tokenizer_config.json", TOKENIZER_CONFIG), ("special_tokens_map.json", SPECIAL_TOKENS_MAP)]:
        with open(os.path.join(MODEL_DIR, name), "w") as fh:
            json.dump(obj, fh, indent=2)
            fh.write("\n")
    print("vocab", tok.get_vocab_size(), {p: tok.token_to_id(p) for p in PARENS})
    for s in ["print(str(str(123)))", "    def __init__(self, x):\n        self.x = f(g(x), 12)\n"]:
        print(tok.encode(s).tokens)


if __name__ == "__main__":
    main()
