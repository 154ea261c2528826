"""Step 5: turn train.py's final shards into the shipped HF folder data/models/<name>/.

Loads tmp/model/run/final/shard-*.safetensors into transformers' LlamaForCausalLM (strict: every
tensor present, no extra), saves it with save_pretrained (config.json + model.safetensors,
float32), and copies the run's loss curve and train.json next to it (and the tokenizer files
when the recipe reuses another model's tokenizer).
"""
import argparse
import glob
import os
import shutil
import sys

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.dirname(__file__))
from common import MODEL_DIR, TOKENIZER_DIR, WORK  # noqa: E402
from train import model_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=os.path.join(WORK, "run"))
    ap.add_argument("--out", default=MODEL_DIR)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if os.path.abspath(TOKENIZER_DIR) != os.path.abspath(args.out):  # a recipe that reuses a tokenizer
        for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
            shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(args.out, name))
    tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
    sd = {}
    for f in sorted(glob.glob(os.path.join(args.run, "final", "shard-*.safetensors"))):
        sd.update(load_file(f))
    saved = os.path.join(args.run, "final", "config.json")  # the architecture the run trained (train.py writes it)
    config = LlamaConfig.from_json_file(saved) if os.path.exists(saved) else model_config(tok.get_vocab_size())
    model = LlamaForCausalLM(config)
    model.load_state_dict(sd, strict=True)
    model = model.to(torch.float32)
    model.generation_config.pad_token_id = None
    model.save_pretrained(args.out, safe_serialization=True)
    for name in ["loss_curve.csv", "train.json"]:
        shutil.copy(os.path.join(args.run, name), os.path.join(args.out, name))
    print("saved", args.out, sorted(os.listdir(args.out)))


if __name__ == "__main__":
    main()
