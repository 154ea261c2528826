"""Step 1: collect the training corpus (real code + generated nested calls) and the held-out set.

Real code: this Python's standard library (PSF-2.0) and the permissively licensed packages of
the build venv that the recipe names (recipes.py; licences copied into the model card). Every test
directory is left out; CPython's own `test/` package is the held-out real-code set. Lines matching
the authors' template (common.FORBIDDEN) are dropped from real code; generated text (generate.py,
the recipe's generator style) never contains it; both are asserted at the end, and so is that no
held-out evaluation prompt (heldout.py) occurs in either. Output: <work>/corpus/{real,generated,heldout}.txt
+ manifest.json (<work>: tmp/model, or tmp/model/<recipe> for other recipes than parenlens-code-6l).
"""
import json
import os
import random
import sys
import sysconfig

from common import CORPUS_DIR, DOC_SEP, MODEL_NAME, RECIPE_SPEC, contains_forbidden
from generate import GENERATORS
from heldout import assert_no_leak, check_construction

if RECIPE_SPEC.get("data_from"):
    sys.exit(f"corpus: recipe {MODEL_NAME} trains on the corpus of {RECIPE_SPEC['data_from']}: "
             f"build it with PARENLENS_RECIPE={RECIPE_SPEC['data_from']}")
SPEC = RECIPE_SPEC["corpus"]
SEED = SPEC["seed"]
N_GENERATED_DOCS = SPEC["generated_docs"]
PACKAGES = SPEC["packages"]  # package (import folder in site-packages) -> licence
SKIP_PARTS = {"test", "tests", "testing", "idle_test", "site-packages", "_vendor", "__pycache__"}
MAX_FILE_BYTES = 400_000


def py_files(root: str, skip_parts: set[str]) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in skip_parts)
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.join(d, f))
    return out


def clean(path: str) -> tuple[str | None, int]:
    """File text without forbidden lines; None for binary-ish, huge or data-like files."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (UnicodeDecodeError, OSError):
        return None, 0
    if not text.strip() or len(text) > MAX_FILE_BYTES or DOC_SEP in text:
        return None, 0
    lines = text.split("\n")
    if sum(len(l) for l in lines) / max(1, len(lines)) > 100:  # tables of data, not code
        return None, 0
    kept = [l for l in lines if not contains_forbidden(l)]
    text = "\n".join(kept)
    if contains_forbidden(text):  # a match spanning lines: drop the file
        return None, len(lines)
    return text, len(lines) - len(kept)


def write_generated_only() -> None:
    """`--generated-only` (a GPU machine): regenerate generated.txt from the seed; the real text
    and the checks come from the CPU side, and gpu_train.sh compares the token streams' sha256."""
    gen = GENERATORS[SPEC["generator"]](SEED).docs(N_GENERATED_DOCS)
    assert not any(contains_forbidden(d) for d in gen)
    os.makedirs(CORPUS_DIR, exist_ok=True)
    with open(os.path.join(CORPUS_DIR, "generated.txt"), "w", encoding="utf-8") as fh:
        fh.write(DOC_SEP.join(gen))
    print(f"generated: {len(gen)} documents, {sum(len(d) for d in gen) / 1e6:.2f} M chars")


def main() -> None:
    if "--generated-only" in sys.argv[1:]:
        return write_generated_only()
    os.makedirs(CORPUS_DIR, exist_ok=True)
    stdlib = sysconfig.get_paths()["stdlib"]
    purelib = sysconfig.get_paths()["purelib"]
    sources = [("python-stdlib", stdlib, "PSF-2.0", py_files(stdlib, SKIP_PARTS))]
    for pkg, lic in PACKAGES.items():
        root = os.path.join(purelib, pkg)
        if not os.path.isdir(root):
            sys.exit(f"corpus: package folder {root} missing (install scripts/model/requirements.txt)")
        sources.append((pkg, root, lic, py_files(root, SKIP_PARTS)))

    real, manifest, dropped_lines = [], [], 0
    for name, root, lic, files in sources:
        n_bytes = 0
        for p in files:
            text, dropped = clean(p)
            dropped_lines += dropped
            if text is not None:
                real.append(text)
                n_bytes += len(text.encode())
        manifest.append({"source": name, "licence": lic, "files": len(files), "bytes": n_bytes})
        print(f"{name:16s} {lic:14s} {len(files):5d} files {n_bytes / 1e6:6.2f} MB")

    held = []
    for p in py_files(os.path.join(stdlib, "test"), {"__pycache__"}):
        text, _ = clean(p)
        if text is not None:
            held.append(text)

    rng = random.Random(SEED)
    rng.shuffle(real)
    rng.shuffle(held)
    gen = GENERATORS[SPEC['generator']](SEED).docs(N_GENERATED_DOCS)

    check_construction()
    for name, docs in [("real", real), ("generated", gen), ("heldout", held)]:
        if name != "heldout":  # the authors' template is absent from everything trained on
            assert not any(contains_forbidden(d) for d in docs), name
            assert_no_leak(docs, f"{MODEL_NAME} {name} training text")
        with open(os.path.join(CORPUS_DIR, f"{name}.txt"), "w", encoding="utf-8") as fh:
            fh.write(DOC_SEP.join(docs))
        print(f"{name}: {len(docs)} documents, {sum(len(d) for d in docs) / 1e6:.2f} M chars")
    info = {"recipe": MODEL_NAME, "generator": SPEC["generator"], "seed": SEED, "python": sys.version.split()[0], "real_sources": manifest,
            "real_docs": len(real), "forbidden_lines_dropped": dropped_lines,
            "generated_docs": len(gen), "heldout_source": "CPython Lib/test (PSF-2.0)", "heldout_docs": len(held)}
    with open(os.path.join(CORPUS_DIR, "manifest.json"), "w") as fh:
        json.dump(info, fh, indent=1)


if __name__ == "__main__":
    main()
