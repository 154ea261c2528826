"""Golden outputs of Hugging Face transformers on the fixture checkpoints.

For each test/fixtures/checkpoints/<name>/ (written by write-fixture-checkpoints.ts) this runs
AutoModelForCausalLM (attn_implementation="eager", float32 — BF16 weights are upcast exactly) on a
fixed left-padded batch and writes
  test/fixtures/golden/random-<name>.safetensors  (all float32)
  test/fixtures/golden/random-<name>.json         (inputs as lists + what every tensor holds)

Run: .venv/bin/python scripts/golden/make_random_goldens.py
"""
import json
import os

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "test", "fixtures")
CKPTS = os.path.join(ROOT, "checkpoints")
OUT = os.path.join(ROOT, "golden")
NAMES = ["tiny-f32", "tiny-gqa", "tiny-tied", "tiny-bf16", "tiny-sharded", "tiny-rope-linear", "tiny-tok", "codellama-shrunk"]
# Models whose vocabulary is large: store logits of the last position only (size).
LAST_POSITION_ONLY = {"codellama-shrunk"}
PAD_ID = 0

# Token-id prompts for the vocab-64 checkpoints (row 0 is unpadded).
ID_PROMPTS = [
    [1, 5, 9, 13, 2, 7, 30, 41, 63, 17],
    [1, 22, 22, 22, 8, 3],
    [1, 40, 11],
]
# Text prompts for checkpoints that ship the test tokenizer.
TEXT_PROMPTS = ["def add(a, b): return f(g(a", "print(str(x", "y = h(1"]


def left_pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, n - len(s):] = torch.tensor(s)
        mask[i, n - len(s):] = 1
    return ids, mask


def prompts_for(folder: str) -> tuple[list[list[int]], list[str] | None]:
    tok_file = os.path.join(folder, "tokenizer.json")
    if os.path.exists(tok_file):
        tok = Tokenizer.from_file(tok_file)
        return [tok.encode(t).ids for t in TEXT_PROMPTS], TEXT_PROMPTS  # with <s>
    return ID_PROMPTS, None


@torch.no_grad()
def golden(name: str) -> None:
    folder = os.path.join(CKPTS, name)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    arch = type(model).__name__
    model.eval()
    seqs, texts = prompts_for(folder)
    ids, mask = left_pad(seqs)
    # HF's forward does not derive positions from the mask (generate does): pass them, as the runtime computes them.
    pos = (mask.cumsum(-1) - 1).clamp(min=0)

    resid_post = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: resid_post.append((out[0] if isinstance(out, tuple) else out).clone()))
             for layer in model.model.layers]
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True, output_attentions=True)
    for h in hooks:
        h.remove()
    n_layers = model.config.num_hidden_layers
    assert len(out.hidden_states) == n_layers + 1 and len(resid_post) == n_layers

    logits = out.logits  # [batch, pos, vocab]
    tensors = {
        "input_ids": ids.float(),
        "attention_mask": mask.float(),
        "position_ids": pos.float(),
        "hidden_states": torch.stack(out.hidden_states),  # [layers+1, batch, pos, d_model]
        "resid_post": torch.stack(resid_post),  # [layers, batch, pos, d_model]
        "attentions": torch.stack(out.attentions),  # [layers, batch, head, query_pos, key_pos]
    }
    if name in LAST_POSITION_ONLY:
        tensors["logits_last"] = logits[:, -1, :]  # [batch, vocab]
    else:
        tensors["logits"] = logits
    tensors = {k: v.contiguous().float() for k, v in tensors.items()}
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, f"random-{name}.safetensors"), metadata={"checkpoint": name})
    info = {
        "checkpoint": f"test/fixtures/checkpoints/{name}",
        "producer": f"transformers {transformers.__version__}, torch {torch.__version__}, {arch}, "
                    "attn_implementation=eager, float32",
        "padding": "left",
        "pad_id": PAD_ID,
        "texts": texts,
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "position_ids": pos.tolist(),
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
        "meaning": {
            "input_ids, attention_mask, position_ids": "as passed to the model, stored as float32 (exact small integers); "
                                                      "position_ids = cumsum(mask) - 1 clipped at 0",
            "logits": "[batch, pos, vocab]",
            "logits_last": "[batch, vocab]: logits at the last position (index -1) only",
            "hidden_states": "[n_layers+1, batch, pos, d_model]: HF output_hidden_states. Index l < n_layers is "
                             "blocks.l.hook_resid_pre (index 0 = hook_embed); index n_layers is the final RMSNorm's "
                             "output including its weight (ln_final.hook_normalized * model.norm.weight), NOT resid_post",
            "resid_post": "[n_layers, batch, pos, d_model]: each decoder layer's output = blocks.l.hook_resid_post",
            "attentions": "[n_layers, batch, head, query_pos, key_pos]: blocks.l.attn.hook_pattern. Rows whose query "
                          "is a pad token are implementation-defined (HF gives a uniform row over every key): compare "
                          "only rows where attention_mask[b, query_pos] = 1",
        },
    }
    with open(os.path.join(OUT, f"random-{name}.json"), "w") as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")
    size = os.path.getsize(os.path.join(OUT, f"random-{name}.safetensors"))
    print(f"{name}: {', '.join(f'{k} {list(v.shape)}' for k, v in tensors.items())}; {size / 1024:.0f} KiB")


def main() -> None:
    torch.manual_seed(0)
    for name in NAMES:
        golden(name)


if __name__ == "__main__":
    main()
