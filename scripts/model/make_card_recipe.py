"""The model card of the recipes after parenlens-code-6l (make_card.py calls write_card for them).

Every number comes from files the pipeline wrote into the model folder: config.json, train.json
(chunks, snapshots), loss_curve.csv, eval.json (evaluate.py), heldout.json (heldout_eval.py), and
corpus.json (the corpus manifest and token counts). The held-out table is set beside
parenlens-code-6l's (its committed heldout.json) cell by cell: the old model against the new.
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import MODEL_DIR, MODEL_NAME, PARENS, RECIPE_SPEC, ROOT  # noqa: E402
from recipes import RECIPES  # noqa: E402

OLD = "parenlens-code-6l"
GENERATOR_TEXT = {
    "v2": "`scripts/model/generate.py`'s `VariedGen` (generator v2): call chains of depth 1–6 with several and keyword "
          "arguments, calls already closed before the open one, method chains with closed calls, statements, blocks, "
          "functions and methods; numbers of every length 1–7 digits equally often (plus small integers and decimals), "
          "half of the identifiers and strings synthesized from syllables, so that closing the parens takes counting and "
          "copying a number takes copying, not a prior over lengths.",
}


def load(name: str, folder: str = MODEL_DIR) -> dict:
    with open(os.path.join(folder, name)) as fh:
        return json.load(fh)


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def comparison(new: dict, old: dict) -> list[str]:
    """Every held-out target cell of the old model beside the new one's."""
    old_cells = {(t["family"], t["n"], t["digits"]): t for t in old["targets"]}
    lines = [f"| family | n | digits | metric | target | {OLD} | {MODEL_NAME} | met (old → new) |",
             "|---|---|---|---|---|---|---|---|"]
    for t in new["targets"]:
        o = old_cells.get((t["family"], t["n"], t["digits"]))
        mark = lambda m: "yes" if m else "**no**"  # noqa: E731
        lines.append(f"| {t['family']} | {t['n']} | {t['digits'] or '–'} | {'vocab' if t['metric'] == 'acc_vocab' else 'four'} | "
                     f"{pct(t['target'])} | {pct(o['value']) if o else '–'} | {pct(t['value'])} | "
                     f"{mark(o['met']) if o else '–'} → {mark(t['met'])} |")
    met_new = sum(t["met"] for t in new["targets"])
    met_old = sum(t["met"] for t in old["targets"])
    lines += ["", f"Target cells met: {OLD} {met_old} of {len(old['targets'])}, {MODEL_NAME} {met_new} of {len(new['targets'])}."]
    return lines


def write_card() -> None:
    cfg = load("config.json")
    train = load("train.json")
    ev = load("eval.json")
    held = load("heldout.json")
    old_held = load("heldout.json", os.path.join(ROOT, "data", "models", OLD))
    from make_card import load_corpus, loss_section, svg_curve  # one reading of the corpus and one curve for every card
    corpus = load_corpus()
    man, toks = corpus["manifest"], corpus["tokens"]
    gen = RECIPES[RECIPE_SPEC.get("data_from", MODEL_NAME)]["corpus"]["generator"]
    vocab = json.load(open(os.path.join(MODEL_DIR, "tokenizer.json")))["model"]["vocab"]
    with open(os.path.join(MODEL_DIR, "loss_curve.csv")) as fh:
        rows = list(csv.DictReader(fh))
    with open(os.path.join(MODEL_DIR, "loss_curve.svg"), "w") as fh:
        fh.write(svg_curve(rows))
    R = train["recipe"]
    size_mb = os.path.getsize(os.path.join(MODEL_DIR, "model.safetensors")) / 2**20

    L: list[str] = []
    w = L.append
    w(f"# {MODEL_NAME}\n")
    w("A small code language model in the CodeLlama architecture family, trained in this repository (issue 15: deep enough "
      "to ask whether the work happens in the middle-to-late layers, trained mostly on real code with plain cross-entropy, "
      "judged on held-out prompts that neither training nor the recipe saw). A Hugging Face checkpoint (`LlamaForCausalLM`): "
      f"`HookedLlama.fromPretrained(\"data/models/{MODEL_NAME}\")` or `transformers.LlamaForCausalLM.from_pretrained`.\n")
    w("## Architecture\n")
    w("| | |\n|---|---|")
    w(f"| class | LlamaForCausalLM (RMSNorm, rotary embeddings θ = {cfg['rope_parameters']['rope_theta']:g}, SwiGLU MLP, multi-head attention) |")
    w(f"| layers / heads / d_model / d_head / d_mlp | {cfg['num_hidden_layers']} / {cfg['num_attention_heads']} / {cfg['hidden_size']} / "
      f"{cfg['hidden_size'] // cfg['num_attention_heads']} / {cfg['intermediate_size']} |")
    w(f"| vocabulary | {cfg['vocab_size']} |")
    w("| embeddings | untied (`lm_head` separate from `embed_tokens`, as CodeLlama) |")
    w(f"| parameters | {train['params']:,} |")
    w(f"| weights | model.safetensors, float32, {size_mb:.1f} MiB |")
    w(f"| context used in training | {R['seq']} tokens (max_position_embeddings {cfg['max_position_embeddings']}) |\n")

    w("## Tokenizer\n")
    w(f"The tokenizer of `{RECIPE_SPEC['tokenizer']}` ({len(vocab)} tokens, byte-fallback BPE; its card says how it was built), "
      "copied here. Digits are single tokens, and the four closing-paren runs of the study are single tokens:\n")
    w("| token | id |\n|---|---|")
    for p in PARENS:
        w(f"| `{p}` | {vocab[p]} |")
    w(f"\nCharacters per token: real code {toks['real']['chars_per_token']}, generated code {toks['generated']['chars_per_token']}.\n")

    w("## Training data\n")
    w(f"Real code (the Python files of these sources, every `test`/`tests`/`testing` folder and vendored code left out; "
      f"lines matching the authors' template dropped: {man['forbidden_lines_dropped']}):\n")
    w("| source | licence | files | MB |\n|---|---|---|---|")
    for src in man["real_sources"]:
        w(f"| {src['source']} | {src['licence']} | {src['files']} | {src['bytes'] / 1e6:.2f} |")
    w(f"\nPython {man['python']}; {man['real_docs']} documents, {toks['real']['tokens']:,} tokens. Generated code, a minority "
      f"of the sequences ({R['gen_fraction']:.0%}): {man['generated_docs']:,} seeded snippets ({toks['generated']['tokens']:,} tokens) "
      f"from {GENERATOR_TEXT[gen]} No held-out prompt followed by its label occurs in the real or the generated text "
      f"(`corpus.py` checks every one). Held-out real code: CPython's `Lib/test` ({man['heldout_docs']} files, PSF-2.0).\n")

    w("## Training\n")
    precision = "float32" if train["precision"] == "fp32" else "bf16 autocast"
    loss_extra = " (plain: no task-specific weight)" if R["paren_weight"] == 1 else f" with weight {R['paren_weight']:g} on paren targets"
    w(f"Recipe `{MODEL_NAME}` (`scripts/model/recipes.py`, `train.py`, seed {R['seed']}): {R['steps']} steps × {R['batch']} "
      f"sequences × {R['seq']} tokens = {R['steps'] * R['batch'] * R['seq']:,} tokens; cross-entropy"
      f"{loss_extra}; "
      f"AdamW (lr {R['lr']:g}, β {tuple(R['betas'])}, weight decay {R['weight_decay']}), {R['warmup']} warm-up steps then cosine "
      f"decay to {R['min_lr_ratio']:g}× lr, gradient clipping {R['clip']}, {precision}; the shipped weights are an exponential "
      f"moving average (decay {R['ema']}) of the trained ones. Training wall time {train['train_time_s'] / 3600:.2f} h "
      f"(evaluation and snapshots excluded) on {train['device_name']}, torch {train['torch']}, in {len(train['chunks'])} chunks "
      "resumed from the committed checkpoint (`scripts/model/run_store.py`):\n")
    w("| chunk | steps | training time (s) | device | threads | median tokens/s |\n|---|---|---|---|---|---|")
    for i, c in enumerate(train["chunks"]):
        w(f"| {i + 1} | {c['from_step']} → {c['to_step']} | {c['train_time_s']:.0f} | {c['device']} | {c['threads']} | "
          f"{c['median_tokens_per_s']:,.0f} |")
    w("\nIntermediate checkpoints of this run (the trained, not averaged, weights in bf16; for analyses of how the circuit "
      "forms; `HookedLlama.fromPretrained` loads each folder):\n")
    w("| step | tokens | training time (s) | folder |\n|---|---|---|---|")
    for snap in train["snapshots"]:
        w(f"| {snap['step']} | {snap['tokens']:,} | {snap['train_time_s']:.0f} | `{snap['folder']}` |")
    w("")
    L.extend(loss_section(rows, "training loss", "held-out loss (Lib/test)", "authors' template (3 digits, monitor), vocab. acc."))

    w("## Held-out evaluation (`scripts/model/heldout_eval.py`; heldout.md has every table)\n")
    res = held["families"]
    w("| family | n | prompts | vocab % | among four % | mean p(label) | median LD (vocab) | p5 LD (vocab) |")
    w("|---|---|---|---|---|---|---|---|")
    for fam, r in res.items():
        for n, x in r["per_n"].items():
            w(f"| {fam} | {n} | {x['prompts']} | {pct(x['acc_vocab'])} | {pct(x['acc_four'])} | {x['mean_p_correct']:.3f} | "
              f"{x['median_ld_vocab']:.2f} | {x['p05_ld_vocab']:.2f} |")
    w(f"\n### Against {OLD}, target cell by target cell\n")
    L.extend(comparison(held, old_held))
    w("")
    w("## Evaluation of the issue-6 templates (`scripts/model/evaluate.py`)\n")
    h = ev["heldout"]
    w(f"Held-out real code: **{h['loss_nats_per_token']} nats/token** (perplexity {h['perplexity']}) on {h['tokens']:,} tokens.\n")
    w("| template | n | prompts | among four | vocabulary |\n|---|---|---|---|---|")
    for t, res_t in ev["templates"].items():
        for n, r in res_t["per_n"].items():
            w(f"| {t} | {n} | {r['n_prompts']} | {pct(r['acc_among_four'])} % | {pct(r['acc_vocab'])} % |")
    w("\n## Rebuild\n")
    w("```bash\nbash scripts/setup.sh --training\n"
      f"PARENLENS_RECIPE={RECIPE_SPEC.get('data_from', MODEL_NAME)} bash scripts/model/gpu_prepare.sh   # corpus + token arrays\n"
      f"PARENLENS_RECIPE={MODEL_NAME} CHUNK_MINUTES=50 RESUME=1 THREADS=2 bash scripts/model/build.sh   # repeat; commit data/training/\n```\n")
    with open(os.path.join(MODEL_DIR, "README.md"), "w") as fh:
        fh.write("\n".join(L))
    print("wrote", os.path.join(MODEL_DIR, "README.md"))
