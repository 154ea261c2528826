"""Shared constants and helpers of the embedded-model pipeline (scripts/model/).

The recipe (recipes.py) is chosen with PARENLENS_RECIPE (default: parenlens-code-6l, the shipped
model). Everything big goes under tmp/model/ (parenlens-code-6l) or tmp/model/<recipe>/ (others),
git-ignored; only the finished model folder is committed. Intermediate checkpoints of a run go
outside the repository, to PARENLENS_CHECKPOINTS (default ~/.cache/parenlens/checkpoints)/<recipe>/.
"""
import os
import re
import sys

from recipes import RECIPES

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_NAME = os.environ.get("PARENLENS_RECIPE", "parenlens-code-6l")
if MODEL_NAME not in RECIPES:
    sys.exit(f"PARENLENS_RECIPE={MODEL_NAME!r}: unknown recipe, expected one of {sorted(RECIPES)} (scripts/model/recipes.py)")
RECIPE_SPEC = RECIPES[MODEL_NAME]
MODEL_DIR = os.path.join(ROOT, "data", "models", MODEL_NAME)
# the folder whose tokenizer.json the recipe uses (its own, or a reused one)
TOKENIZER_DIR = MODEL_DIR if RECIPE_SPEC["tokenizer"] == "own" else os.path.join(ROOT, "data", "models", RECIPE_SPEC["tokenizer"])


def work_dir(name: str) -> str:
    """tmp/model/ for parenlens-code-6l (as before recipes had names), tmp/model/<name>/ for others."""
    return os.path.join(ROOT, "tmp", "model", *([] if name == "parenlens-code-6l" else [name]))


WORK = work_dir(MODEL_NAME)  # git-ignored; the run lives in <WORK>/run
# a recipe may train on another recipe's corpus and token arrays ("data_from")
DATA_WORK = work_dir(RECIPE_SPEC.get("data_from", MODEL_NAME))
CHECKPOINTS = os.path.join(os.environ.get("PARENLENS_CHECKPOINTS", os.path.expanduser("~/.cache/parenlens/checkpoints")), MODEL_NAME)
CORPUS_DIR = os.path.join(DATA_WORK, "corpus")          # text
DATA_DIR = os.path.join(DATA_WORK, "data")              # pre-tokenized arrays (carried to the GPU machine)
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
