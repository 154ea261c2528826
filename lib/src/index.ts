/**
 * parenlens: TransformerLens-style hooks, caches and interventions for Llama-family code models on
 * onnxruntime-node, and the closing-parenthesis study (arXiv 2502.18499) built on them.
 *
 * The public surface, by layer (each folder's index.ts says what it keeps internal):
 * core (tensors, token batches, errors, seeds) · checkpoint (Hugging Face folders) · hooks (hook
 * names, interventions, ActivationCache) · runtime (HookedLlama) · task (prompts, pairs) ·
 * analysis (logit lens, sub-layer effects, counting heads, sweep, findings) · notebook (figures,
 * tables, study setup). Test support is the `testing` namespace.
 *
 * @example
 * import { HookedLlama, testing } from "parenlens";
 * const model = await HookedLlama.fromPretrained("data/models/parenlens-code-6l");
 * const ref = testing.referenceForward(model.config, (name) => model.getWeight(name).data, [1, 2, 3]); // float64 logits
 */
export * from "./core";
export * from "./checkpoint";
export * from "./hooks";
export * from "./runtime";
export * from "./task";
export * from "./analysis";
export * from "./notebook";
export * as testing from "./testing";
