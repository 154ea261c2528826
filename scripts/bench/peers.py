"""Peer worker of `npm run bench -- --peers` (scripts/bench/peers.ts): one tool, one checkpoint.

Tools: "tl" (TransformerLens 3 HookedTransformer, from .venv-bench-tl3), "bridge" (TransformerLens 4
TransformerBridge) and "hf" (transformers LlamaForCausalLM, eager attention), all float32 on the CPU.
The orchestrator sends one JSON command per line on stdin and reads one JSON answer per line:
  {"cmd": "run", "mode": ..., "ids": [[...]]}  -> {"ms": wall time of the mode}
  {"cmd": "check", "ids": [[...]]}             -> {"logits": last-position logits of prompt 0}
  {"cmd": "rss"}                               -> {"peakMB": this process' peak RSS}
Modes (the same work as peers.ts does with parenlens): plain, full_cache, selective_cache,
intervention, logit_lens, dla, head_projections, ablation_sweep. A mode the tool has no
equivalent for answers {"ms": null}.
"""
import json
import os
import resource
import sys
import time

import torch

torch.set_grad_enabled(False)
if os.environ.get("PEERS_THREADS"):  # `npm run bench -- --peers --threads N`
    torch.set_num_threads(int(os.environ["PEERS_THREADS"]))
TOOL, FOLDER = sys.argv[1], sys.argv[2]
MEMORY_MODE = sys.argv[3] if len(sys.argv) > 3 else None  # fresh-process memory pass: one mode, then exit
SWEEP_HEADS = 4


def load_hf():
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(FOLDER, attn_implementation="eager", dtype=torch.float32).eval()


def load_tl(hf):
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_llama_weights

    c = hf.config
    heads, kv = c.num_attention_heads, c.num_key_value_heads
    d_head = c.hidden_size // heads
    cfg = HookedTransformerConfig(
        d_model=c.hidden_size, d_head=d_head, n_heads=heads, d_mlp=c.intermediate_size, n_layers=c.num_hidden_layers,
        n_ctx=c.max_position_embeddings, d_vocab=c.vocab_size, act_fn="silu", normalization_type="RMS",
        positional_embedding_type="rotary", rotary_dim=d_head, rotary_base=int(c.rope_theta if hasattr(c, "rope_theta") else 10000),
        final_rms=True, gated_mlp=True, n_key_value_heads=None if kv == heads else kv, eps=c.rms_norm_eps,
        original_architecture="LlamaForCausalLM", default_prepend_bos=False, dtype=torch.float32, device="cpu",
    )
    model = HookedTransformer(cfg)
    model.load_and_process_state_dict(
        convert_llama_weights(hf, cfg), fold_ln=False, center_writing_weights=False, center_unembed=False,
        fold_value_biases=False, refactor_factored_attn_matrices=False,
    )
    return model.eval()


def ids_only_tokenizer(vocab):
    """A word-level tokenizer "t0".."t{vocab-1}" for a checkpoint without tokenizer.json (the bridge wants one)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    import tempfile

    from transformers import AutoTokenizer

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="t1", eos_token="t2", pad_token="t0", unk_token="t0")
    import atexit
    import shutil

    tmp = tempfile.mkdtemp(prefix="parenlens-bench-tok-")  # the bridge reloads it by name_or_path
    atexit.register(shutil.rmtree, tmp, True)
    fast.save_pretrained(tmp)
    return AutoTokenizer.from_pretrained(tmp)


def load_bridge(hf):
    import os

    from transformer_lens.model_bridge import TransformerBridge

    has_tok = os.path.exists(os.path.join(FOLDER, "tokenizer.json"))
    tok = None if has_tok else ids_only_tokenizer(hf.config.vocab_size)
    bridge = TransformerBridge.boot_transformers(FOLDER, hf_model=hf, dtype=torch.float32, device="cpu", tokenizer=tok)
    bridge.enable_compatibility_mode(no_processing=True)  # TL hook names, HF numerics (no folding)
    return bridge


t0 = time.perf_counter()
HF = load_hf()
MODEL = HF if TOOL == "hf" else load_tl(HF) if TOOL == "tl" else load_bridge(HF)
if TOOL == "tl":
    del HF  # TL holds its own copy of the weights
LOAD_MS = (time.perf_counter() - t0) * 1000
CFG = MODEL.config if TOOL == "hf" else MODEL.cfg
L = CFG.num_hidden_layers if TOOL == "hf" else CFG.n_layers
MID = L // 2
POINTS = [n for l in range(L) for n in (f"blocks.{l}.hook_resid_pre", f"blocks.{l}.hook_resid_post")]


def zero_head(head):
    def hook(z, hook):  # [batch, pos, head, d_head]
        z[:, :, head] = 0
        return z

    return [(f"blocks.{MID}.attn.hook_z", hook)]


def hf_zero_head(ids, head):
    """HF: zero head `head`'s slice of o_proj's input (= TL's hook_z of that head)."""
    attn = MODEL.model.layers[MID].self_attn
    d_head = attn.head_dim

    def pre(_mod, args):
        x = args[0].clone()
        x[..., head * d_head : (head + 1) * d_head] = 0
        return (x,)

    handle = attn.o_proj.register_forward_pre_hook(pre)
    try:
        return MODEL(input_ids=ids).logits
    finally:
        handle.remove()


def run_tl(mode, ids):
    m = MODEL
    if mode == "plain":
        return m(ids, return_type="logits")
    if mode == "full_cache":
        return m.run_with_cache(ids, return_type="logits")
    if mode == "selective_cache":
        names = set(POINTS + ["ln_final.hook_scale"])
        return m.run_with_cache(ids, names_filter=lambda n: n in names)
    if mode == "intervention":
        return m.run_with_hooks(ids, fwd_hooks=zero_head(0))
    if mode == "logit_lens":
        names = set(POINTS + ["ln_final.hook_scale"])
        _, cache = m.run_with_cache(ids, names_filter=lambda n: n in names)
        stack = torch.stack([cache[n][:, -1] for n in POINTS])  # [point, batch, d_model]
        return m.unembed(m.ln_final(stack))  # [point, batch, vocab]
    if mode == "dla":
        keep = ("hook_embed", "attn_out", "mlp_out", "ln_final.hook_scale")
        _, cache = m.run_with_cache(ids, names_filter=lambda n: n.endswith(keep))
        stack = cache.decompose_resid(apply_ln=True, pos_slice=-1)  # [component, batch, d_model]
        return stack @ m.W_U[:, 3:7]  # four columns (the paren runs' place)
    if mode == "head_projections":
        _, cache = m.run_with_cache(ids, names_filter=lambda n: n.endswith(("hook_z", "ln_final.hook_scale")))
        stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [layer*head, batch, d_model]
        return stack @ m.W_U  # [layer*head, batch, vocab]
    if mode == "ablation_sweep":
        return [m.run_with_hooks(ids, fwd_hooks=zero_head(h))[:, -1] for h in range(SWEEP_HEADS)]
    raise ValueError(mode)


def run_hf(mode, ids):
    if mode == "plain":
        return MODEL(input_ids=ids).logits
    if mode == "intervention":
        return hf_zero_head(ids, 0)
    if mode == "ablation_sweep":
        return [hf_zero_head(ids, h)[:, -1] for h in range(SWEEP_HEADS)]
    return None  # no cache / lens API


def run(mode, ids):
    t = torch.tensor(ids, dtype=torch.long)
    s = time.perf_counter()
    out = run_hf(mode, t) if TOOL == "hf" else run_tl(mode, t)
    ms = (time.perf_counter() - s) * 1000
    return None if out is None else ms


def last_logits(ids):
    t = torch.tensor(ids, dtype=torch.long)
    logits = MODEL(input_ids=t).logits if TOOL == "hf" else MODEL(t, return_type="logits")
    return logits[0, -1].tolist()


def peak_mb():
    """Peak RSS of this process since its exec (VmHWM; ru_maxrss would carry the parent's over fork + exec)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if MEMORY_MODE:
    ids = json.loads(sys.stdin.readline())["ids"]
    before = peak_mb()
    ms = run(MEMORY_MODE, ids)
    answer({"afterLoadMB": before, "peakMB": peak_mb(), "ms": ms})
    sys.exit(0)

answer({"ready": True, "tool": TOOL, "loadMs": LOAD_MS, "torch": torch.__version__})
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["cmd"] == "run":
        answer({"ms": run(cmd["mode"], cmd["ids"])})
    elif cmd["cmd"] == "check":
        answer({"logits": last_logits(cmd["ids"])})
    elif cmd["cmd"] == "rss":
        answer({"peakMB": peak_mb()})
    elif cmd["cmd"] == "quit":
        break
