"""Seeded random checkpoints built by Hugging Face transformers itself, one per architecture and
Llama variant the runtime supports, plus their golden outputs.

Each checkpoint is constructed from its config class with torch.manual_seed(seed), its weights
re-drawn so activations are O(1) (embeddings ~N(0, 1), projections ~N(0, 1/sqrt(fan_in)), biases
~N(0, 0.1), norm weights 1 + N(0, 0.1), Gemma's (1 + w) norms w ~N(0, 0.1)), and saved with
save_pretrained (config.json as transformers writes it, model.safetensors) under
test/fixtures/checkpoints/hf-<name>/. Then make_random_goldens.golden() runs each with
AutoModelForCausalLM (eager attention, float32) on the fixed left-padded batch and writes
test/fixtures/golden/random-hf-<name>.{json,safetensors}.

A few config.json files are edited after saving, to test how transformers reads them:
- hf-llama-spellings: both rope_scaling (4.x, linear factor 2) and rope_parameters (5.x, linear
  factor 4, rope_theta 500) with top-level rope_theta 1000: transformers uses rope_scaling as a
  whole and fills rope_theta from the top level (the golden is what transformers makes of it).

Run: .venv/bin/python scripts/golden/make_hf_checkpoints.py
"""
import json
import math
import os
import shutil
import sys

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_random_goldens as goldens  # noqa: E402

CKPTS = goldens.CKPTS
TOKENIZER = os.path.join(HERE, "..", "..", "test", "fixtures", "tokenizer")
TOKENIZER_VOCAB = json.load(open(os.path.join(TOKENIZER, "expected-ids.json")))["vocab_size"]

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=64, max_position_embeddings=128)

# name: (config class, seed, config kwargs)
SPECS = {
    "llama-bias": ("LlamaConfig", 11, dict(TINY, attention_bias=True, mlp_bias=True, head_dim=16,
                                           num_key_value_heads=2)),
    # max_position_embeddings 8 < the 10-token prompt: the dynamic NTK base grows for this batch
    "llama-dynamic": ("LlamaConfig", 12, dict(TINY, max_position_embeddings=8,
                                              rope_scaling={"rope_type": "dynamic", "factor": 2.0})),
    "llama-yarn": ("LlamaConfig", 13, dict(TINY, rope_parameters={
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8, "rope_theta": 500.0})),
    "llama3": ("LlamaConfig", 14, dict(TINY, rope_parameters={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8, "rope_theta": 10000.0})),
    "llama-spellings": ("LlamaConfig", 15, dict(TINY)),
    # the 10-token prompt is longer than original_max_position_embeddings 8: long factors for this batch
    "llama-longrope": ("LlamaConfig", 16, dict(TINY, max_position_embeddings=32, rope_parameters={
        "rope_type": "longrope", "short_factor": [1.0, 1.5, 2.0, 3.0], "long_factor": [1.0, 4.0, 8.0, 16.0],
        "original_max_position_embeddings": 8, "rope_theta": 10000.0})),
    "qwen2": ("Qwen2Config", 21, dict(TINY, num_key_value_heads=2, tie_word_embeddings=True)),
    # vocabulary = the test tokenizer's: the study notebooks run on it in CI
    "qwen2-tok": ("Qwen2Config", 22, dict(TINY, num_key_value_heads=2, tie_word_embeddings=True,
                                          vocab_size=TOKENIZER_VOCAB, bos_token_id=1, eos_token_id=2)),
    # window 4 < the 10-token prompt: keys more than 3 tokens back are hidden
    "mistral": ("MistralConfig", 31, dict(TINY, num_key_value_heads=2, sliding_window=4)),
    "starcoder2": ("Starcoder2Config", 41, dict(TINY, num_key_value_heads=2, use_bias=True,
                                                tie_word_embeddings=True)),
    "gemma": ("GemmaConfig", 51, dict(TINY, num_key_value_heads=1, head_dim=16)),
}
WITH_TOKENIZER = {"qwen2-tok"}


def redraw(model: torch.nn.Module, gemma: bool) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_((0.0 if gemma else 1.0) + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))


def build(name: str) -> None:
    cls_name, seed, kwargs = SPECS[name]
    config = getattr(transformers, cls_name)(**kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    redraw(model, gemma=cls_name == "GemmaConfig")
    folder = os.path.join(CKPTS, f"hf-{name}")
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    if name == "llama-spellings":
        cfg_file = os.path.join(folder, "config.json")
        cfg = json.load(open(cfg_file))
        cfg.pop("rope_parameters", None)
        cfg["rope_theta"] = 1000.0
        cfg["rope_scaling"] = {"type": "linear", "factor": 2.0}
        cfg["rope_parameters"] = {"rope_type": "linear", "factor": 4.0, "rope_theta": 500.0}
        with open(cfg_file, "w") as fh:
            json.dump(cfg, fh, indent=2)
            fh.write("\n")
    if name in WITH_TOKENIZER:
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join(TOKENIZER, f), os.path.join(folder, f))
    print(f"built hf-{name} ({cls_name}, seed {seed})")


def main() -> None:
    names = sys.argv[1:] or list(SPECS)
    for name in names:
        build(name)
    for name in names:
        goldens.golden(f"hf-{name}")


if __name__ == "__main__":
    main()
