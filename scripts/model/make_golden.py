"""Step 8: golden reference outputs of the shipped model, written by Hugging Face transformers.

Loads data/models/<name>/ with LlamaForCausalLM (attn_implementation="eager", float32) — which
also proves the folder is a valid HF checkpoint — and runs each prompt alone (no padding).
Writes test/fixtures/golden/model-<name>.safetensors with, per prompt i (P_i tokens):
  p{i}.logits_last    [vocab]              logits at the last position
  p{i}.hidden_states  [layer+1, pos, d_model]  HF hidden_states: [l] = blocks.l.hook_resid_pre for
                      l < n_layers, [n_layers] = final norm output (ln_final.hook_normalized * weight)
  p{i}.resid_post_last [pos, d_model]      output of the last layer (blocks.{L-1}.hook_resid_post;
                      the others equal hidden_states[l+1])
  p{i}.attentions     [layer, head, pos, pos]  attention patterns (blocks.l.attn.hook_pattern)
and model-<name>.json with the prompts, token ids (with <s>), tokens and the top next tokens, plus
the Python token ids of a few extra texts (the TypeScript tokenizer must give the same).
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import GOLDEN_DIR, MODEL_DIR, MODEL_NAME, authors_prompt  # noqa: E402

PROMPTS = [
    authors_prompt(417, 3)[0],            # the authors' template, 3 missing parens
    authors_prompt(962, 1)[0],            # the authors' template, 1 missing paren
    "reply = session.dispatch(alpha, codec.pack(beta, frame.seal(gamma, 12",
    "def digest(records, limit):\n    return tally(purge(records",
    "total = blend(weigh(alpha), mix(trim(beta, 3), gamma",
]

# extra texts whose Python token ids the TypeScript tokenizer must reproduce
TOKENIZER_SAMPLES = [
    "    def __init__(self, x):\n        self.x = f(g(x), 12)\n",
    " leading space and  two   spaces",
    "foo(bar(baz(qux(quux(corge(1))))))",
    "if f(g(x)):\n    return {'a': [1, 2]}, h(y)),",
    "naïve café ✓ 日本 \t tab",
    "x = 1</s>",
    "",
]


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    tok = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32, attn_implementation="eager").eval()
    L = model.config.num_hidden_layers
    last_out = {}
    model.model.layers[L - 1].register_forward_hook(lambda m, i, o: last_out.update(x=o[0] if isinstance(o, tuple) else o))
    tensors, meta = {}, []
    for i, text in enumerate(PROMPTS):
        enc = tok.encode(text)  # with <s>
        out = model(input_ids=torch.tensor([enc.ids]), output_hidden_states=True, output_attentions=True)
        tensors[f"p{i}.logits_last"] = out.logits[0, -1].contiguous()                                  # [vocab]
        tensors[f"p{i}.hidden_states"] = torch.stack([h[0] for h in out.hidden_states]).contiguous()   # [L+1, pos, d_model]
        tensors[f"p{i}.resid_post_last"] = last_out["x"][0].contiguous()                              # [pos, d_model]
        tensors[f"p{i}.attentions"] = torch.stack([a[0] for a in out.attentions]).contiguous()        # [L, head, pos, pos]
        top = out.logits[0, -1].topk(5)
        meta.append({"text": text, "ids": enc.ids, "tokens": enc.tokens,
                     "top5": [[tok.id_to_token(int(j)), round(float(v), 4)] for v, j in zip(top.values, top.indices)]})
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    base = os.path.join(GOLDEN_DIR, f"model-{MODEL_NAME}")
    save_file({k: v.float() for k, v in tensors.items()}, base + ".safetensors")
    info = {"model": f"data/models/{MODEL_NAME}",
            "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, LlamaForCausalLM, "
                        "attn_implementation=eager, float32, one prompt at a time (no padding)",
            "n_layers": L, "prompts": meta,
            "tokenizer_samples": [{"text": t, "ids": tok.encode(t).ids} for t in TOKENIZER_SAMPLES],
            "tensors": {k: list(v.shape) for k, v in tensors.items()}}
    with open(base + ".json", "w") as fh:
        json.dump(info, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    size = os.path.getsize(base + ".safetensors")
    assert size < 2_000_000, f"golden too large: {size} bytes"
    print(base, size, "bytes")
    for m in meta:
        print(repr(m["text"][-30:]), len(m["ids"]), m["top5"][:3])


if __name__ == "__main__":
    main()
