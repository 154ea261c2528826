"""The named recipes of the embedded-model pipeline: corpus + architecture + training, one dict each.

Choose one with PARENLENS_RECIPE (default parenlens-code-6l, the shipped model, unchanged):
  PARENLENS_RECIPE=parenlens-code-12l bash scripts/model/build.sh
Every script of scripts/model/ reads the chosen recipe through common.py; train.py records it in
train.json. A recipe is never tuned on the held-out prompts (heldout.py).
"""

REAL_6L = {  # package (import folder in site-packages) -> licence, as declared in its dist-info metadata
    "numpy": "BSD-3-Clause",
    "networkx": "BSD-3-Clause",
    "tornado": "Apache-2.0",
    "requests": "Apache-2.0",
    "urllib3": "MIT",
    "traitlets": "BSD-3-Clause",
    "jupyter_server": "BSD-3-Clause",
    "ipykernel": "BSD-3-Clause",
}

RECIPES = {
    # The shipped model (issue 6): 70 % generated call chains, 10x loss weight on paren targets.
    "parenlens-code-6l": {
        "corpus": {"seed": 1234, "packages": REAL_6L, "generator": "v1", "generated_docs": 100_000},
        "tokenizer": "own",  # trained by tokenizer.py into the model folder
        "train": {
            "seed": 0,
            "layers": 6, "d_model": 256, "heads": 8, "d_mlp": 688, "rope_theta": 10000.0, "max_pos": 512,
            "seq": 256, "batch": 32, "steps": 4400,
            "lr": 2e-3, "min_lr_ratio": 0.1, "warmup": 200, "weight_decay": 0.1, "betas": [0.9, 0.95], "clip": 1.0,
            "gen_fraction": 0.7, "paren_weight": 10.0,
            "ema": 0.998,  # the shipped weights are an exponential moving average of the trained ones
        },
    },
    # Issue 15: >= 12 layers, real code first (generated snippets a minority, numbers of 1-7 digits,
    # varied identifiers and strings), no task-specific loss weight. 11.1 M parameters: 44 MB in
    # float32, 22 MB in bf16. Token budget: 9000 x 64 x 256 = 147.5 M tokens (scripts/model/README.md).
    "parenlens-code-12l": {
        "corpus": {"seed": 4321, "generator": "v2", "generated_docs": 100_000,
                   "packages": {**REAL_6L,
                                "sympy": "BSD-3-Clause",       # metadata "BSD"; LICENSE: 3-clause ("New BSD")
                                "IPython": "BSD-3-Clause",
                                "rich": "MIT",
                                "setuptools": "MIT",
                                "huggingface_hub": "Apache-2.0"}},
        "tokenizer": "parenlens-code-6l",  # reused: digits are single tokens, `)`..`))))` single tokens
        "train": {
            "seed": 0,
            "layers": 12, "d_model": 256, "heads": 8, "d_mlp": 688, "rope_theta": 10000.0, "max_pos": 512,
            "seq": 256, "batch": 64, "steps": 9000,
            "lr": 1.5e-3, "min_lr_ratio": 0.1, "warmup": 300, "weight_decay": 0.1, "betas": [0.9, 0.95], "clip": 1.0,
            "gen_fraction": 0.25, "paren_weight": 1.0,
            "ema": 0.999,
        },
        # intermediate checkpoints (bf16 trained weights) at these fractions of the steps
        "snapshots": [1 / 64, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0],
    },
    # The 12l corpus at a size that a 2-core CPU can train in chunks (12 layers x 192, 6.5 M parameters,
    # 8000 x 32 x 256 = 65.5 M tokens); scripts/model/README.md has the measured per-step times.
    "parenlens-code-12l-cpu": {
        "corpus": None, "data_from": "parenlens-code-12l",
        "tokenizer": "parenlens-code-6l",
        "train": {
            "seed": 0,
            "layers": 12, "d_model": 192, "heads": 6, "d_mlp": 512, "rope_theta": 10000.0, "max_pos": 512,
            "seq": 256, "batch": 32, "steps": 8000,
            "lr": 2e-3, "min_lr_ratio": 0.1, "warmup": 300, "weight_decay": 0.1, "betas": [0.9, 0.95], "clip": 1.0,
            "gen_fraction": 0.25, "paren_weight": 1.0,
            "ema": 0.999,
        },
        "snapshots": [1 / 64, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0],
    },
}
