/**
 * A head's own logit lens: its output at the last position (z · W_O, through the run's cached final
 * norm: `cache.stackHeadResults({ applyLn: true })`) projected on the whole unembedding W_U, averaged
 * over the prompts of each n (and over all), and the top tokens of the whole vocabulary — what the
 * head writes, not only how it ranks the four paren runs.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { dot, modelUnembedColumns } from "./metrics";
import { StudyPrompt, checkStudyPrompts, groupsOf, lengthBatches } from "./study";
import { ProgressOptions, withForwardProgress } from "./forward-progress";

export interface HeadLensRow {
  layer: number;
  head: number;
  label: string;
  /** "n=2" … or "all"; n is null for the pooled row. */
  group: string;
  n: number | null;
  count: number;
  /** 1 = the token the head's mean output raises most. */
  rank: number;
  tokenId: number;
  /** The token as the tokenizer decodes it (its id as text without a tokenizer). */
  token: string;
  /** Mean direct logit contribution of the head to this token [logits]. */
  logit: number;
}

export interface HeadLogitLensOptions extends ProgressOptions {
  /**
   * Top k
   *
   * Tokens per head and group.
   *
   * @default 10
   */
  topK?: number;
  /**
   * Batch size
   *
   * Prompts per forward pass.
   *
   * @default 32
   */
  batchSize?: number;
}

/** Sum of each listed head's normalised output over each group's prompts: [head][group] × [d_model]. */
async function groupSums(
  model: HookedLlama,
  prompts: StudyPrompt[],
  heads: { layer: number; head: number }[],
  groupOf: number[][],
  batchSize: number,
): Promise<Float64Array[][]> {
  const { numHeads: H, hiddenSize: D } = model.config;
  const top = Math.max(...heads.map((h) => h.layer)) + 1;
  const names = [...Array.from({ length: top }, (_, l) => `blocks.${l}.attn.hook_z`), "ln_final.hook_scale"];
  const G = Math.max(...groupOf.flat()) + 1;
  const sums = heads.map(() => Array.from({ length: G }, () => new Float64Array(D)));
  for (const { indices } of lengthBatches(prompts, (p) => p.promptIds.length, batchSize)) {
    const { cache } = await model.runWithCache(
      indices.map((i) => prompts[i].promptIds),
      { names, logitsAt: "last" },
    );
    const stack = cache.stackHeadResults({ pos: "last", applyLn: true, layer: top }).stack.data; // [layer*head, batch, d_model]
    const B = indices.length;
    heads.forEach(({ layer, head }, j) => {
      const k = layer * H + head;
      indices.forEach((pi, b) => {
        for (const g of groupOf[pi]) for (let d = 0; d < D; d++) sums[j][g][d] += stack[(k * B + b) * D + d];
      });
    });
  }
  return sums;
}

/**
 * Top tokens of each head's mean output through the final norm and the whole unembedding, per n
 * and pooled.
 *
 * @example
 * const lens = await headLogitLens(model, prompts, [{ layer: 3, head: 5 }], { topK: 5 });
 * lens.filter((r) => r.group === "n=2").map((r) => r.token); // e.g. ["))", ")", ...]
 */
export async function headLogitLens(
  model: HookedLlama,
  prompts: StudyPrompt[],
  heads: { layer: number; head: number }[],
  opts: HeadLogitLensOptions = {},
): Promise<HeadLensRow[]> {
  const { numLayers: L, numHeads: H } = model.config;
  checkStudyPrompts(prompts, model.config.vocabSize);
  const topK = opts.topK ?? 10;
  if (!Number.isInteger(topK) || topK < 1)
    throw new InputError(`topK must be a positive integer, got ${topK}`, { field: "topK" });
  for (const h of heads)
    if (!(
      Number.isInteger(h.layer) &&
      h.layer >= 0 &&
      h.layer < L &&
      Number.isInteger(h.head) &&
      h.head >= 0 &&
      h.head < H
    ))
      throw new InputError(`head L${h.layer}H${h.head} is outside the model's ${L} layers × ${H} heads`, {
        field: "heads",
      });
  if (heads.length === 0) return [];
  const groups = groupsOf(prompts.map((p) => p.n));
  const groupOf = prompts.map((_, i) => groups.flatMap((g, gi) => (g.idx.includes(i) ? [gi] : [])));
  const batchSize = opts.batchSize ?? 32;
  const forwards = lengthBatches(prompts, (p) => p.promptIds.length, batchSize).length;
  const sums = await withForwardProgress(model, opts, "headLogitLens", forwards, () =>
    groupSums(model, prompts, heads, groupOf, batchSize),
  );
  // every head's mean output per group, decoded on onnxruntime in one call
  const D = model.config.hiddenSize;
  const G = groups.length;
  const means = new Float32Array(heads.length * G * D); // [head, group, d_model]
  heads.forEach((_, j) =>
    groups.forEach((g, gi) => {
      for (let d = 0; d < D; d++) means[(j * G + gi) * D + d] = sums[j][gi][d] / g.idx.length;
    }),
  );
  const decoded = await model.unembed(new Tensor(means, [heads.length, G, D], ["head", "group", "d_model"])); // [head, group, vocab]
  const V = decoded.shape[2];
  const rows: HeadLensRow[] = [];
  heads.forEach(({ layer, head }, j) => {
    groups.forEach((g, gi) => {
      const logits = decoded.data.subarray((j * G + gi) * V, (j * G + gi + 1) * V); // [vocab]
      const top = Array.from({ length: V }, (_, v) => v)
        .sort((a, b) => logits[b] - logits[a] || a - b)
        .slice(0, topK);
      // the top tokens' logits again in float64 (the mean output · W_U[:, id]): d_model × topK
      const cols = modelUnembedColumns(model, top);
      const mean = Float64Array.from(sums[j][gi], (x) => x / g.idx.length); // [d_model]
      top.forEach((id, r) =>
        rows.push({
          layer,
          head,
          label: `L${layer}H${head}`,
          group: g.group,
          n: g.n,
          count: g.idx.length,
          rank: r + 1,
          tokenId: id,
          token: model.tokenizer ? model.tokenizer.decode([id]) : String(id),
          logit: dot(mean, cols[r]),
        }),
      );
    });
  });
  return rows;
}
