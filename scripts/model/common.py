"""Shared constants and helpers of the embedded-model pipeline (scripts/model/).

Everything big goes under tmp/model/ (git-ignored); only the finished model folder is committed.
"""
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_NAME = "parenlens-code-6l"
MODEL_DIR = os.path.join(ROOT, "data", "models", MODEL_NAME)
WORK = os.path.join(ROOT, "tmp", "model")          # big intermediates (git-ignored)
CORPUS_DIR = os.path.join(WORK, "corpus")          # text
DATA_DIR = os.path.join(WORK, "data")              # pre-tokenized arrays (carried to the GPU machine)
GOLDEN_DIR = os.path.join(ROOT, "test", "fixtures", "golden")

PARENS = [")", "))", ")))", "))))"]
SPECIALS = ["<unk>", "<s>", "</s>"]
BOS_ID, EOS_ID = 1, 2
DOC_SEP = "\x00"  # separates documents in the corpus text files (never occurs in code we keep)

# The authors' evaluation template: "#print the string N" then "print(str(...N)))".
# Neither its comment nor its call pattern may appear in training text (real or generated).
FORBIDDEN = re.compile(r"#\s*print\s+the\s+string|print\s*\(\s*str\s*\(", re.IGNORECASE)


def contains_forbidden(text: str) -> bool:
    return FORBIDDEN.search(text) is not None


def authors_prompt(number: int, n_missing: int) -> tuple[str, str]:
    """The authors' template with k = n_missing - 1 nested str( calls: (prompt, label)."""
    k = n_missing - 1
    full = f"#print the string {number}\nprint(" + "str(" * k + f"{number}" + ")" * n_missing
    return full[: -n_missing], ")" * n_missing
