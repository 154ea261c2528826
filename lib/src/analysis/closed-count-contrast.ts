/**
 * Finding 3 on closed-count pairs (makeClosedCountPairs: the same n and token count, one more `)`
 * already closed): per head, the paired change of its attention from the last position on the `)`
 * tokens, partner − clean. Length, n and the number of `)` tokens are held fixed, so a head whose
 * attention follows the number of closed parens moves and one that follows length cannot.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import { InputError } from "../core/errors";
import { headLabel } from "../hooks/activation-cache";
import type { ParenTokenSets } from "../task/paren-tokens";
import { BootstrapOptions, bootstrapMean } from "./bootstrap";
import { GroupedEffect, PromptPair, checkPromptPairs, groupsOf, modelParenSets, pairBatches } from "./study";
import { ProgressOptions, withForwardProgress } from "./forward-progress";

export interface ClosedContrastRow extends GroupedEffect {
  layer: number;
  head: number;
  label: string;
  /** Mean attention on `)` tokens of the clean prompts of the group. */
  cleanAttnClose: number;
}

export interface ClosedCountContrastOptions extends ProgressOptions {
  /**
   * Paren token sets
   *
   * Which tokens contain `)`.
   *
   * @default looked up through the model's tokenizer
   */
  parenSets?: ParenTokenSets;
  /**
   * Batch size
   *
   * Pairs per forward pass.
   *
   * @default 32
   */
  batchSize?: number;
  /**
   * Bootstrap
   *
   * Resamples, seed and level of the intervals.
   *
   * @default { samples: 1000, seed: 0, level: 0.95 }
   */
  bootstrap?: BootstrapOptions;
}

/** Attention from each prompt's last position on its `)` tokens, per head: [layer*head][prompt of the batch]. */
function closeAttention(
  pattern: Float32Array, // [batch, head, query_pos, key_pos]
  ids: number[][],
  close: Map<number, number>,
  H: number,
): number[][] {
  const T = ids[0].length;
  return Array.from({ length: H }, (_, h) =>
    ids.map((row, b) => {
      const off = ((b * H + h) * T + (T - 1)) * T;
      let s = 0;
      for (let k = 0; k < T; k++) if (close.has(row[k])) s += pattern[off + k];
      return s;
    }),
  );
}

/**
 * Per head and n: mean of attn_close(partner) − attn_close(clean) over closed-count pairs, with a
 * bootstrap interval (logit units do not apply: `unit` is "fraction", a share of attention).
 *
 * @example
 * const rows = await closedCountContrast(model, partial.closedPairs);
 * rows.filter((r) => r.group === "all" && r.lo > 0).map((r) => r.label); // heads that read one more closed paren
 */
export async function closedCountContrast(
  model: HookedLlama,
  pairs: PromptPair[],
  opts: ClosedCountContrastOptions = {},
): Promise<ClosedContrastRow[]> {
  if (!checkPromptPairs(pairs, model.config.vocabSize))
    throw new InputError("closedCountContrast: every pair needs its partner (corrupted)", { field: "pairs.corrupted" });
  const { numLayers: L, numHeads: H } = model.config;
  const close = modelParenSets(model, opts.parenSets).close;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
  const P = pairs.length;
  const delta = Array.from({ length: L * H }, () => new Float64Array(P));
  const clean = Array.from({ length: L * H }, () => new Float64Array(P));
  // one clean and one partner length per batch: neither side is padded (no patching here, so a
  // right-aligned pair only compares each prompt's own last-position attention)
  const batches = pairBatches(pairs, opts.batchSize ?? 32);
  await withForwardProgress(model, opts, "closedCountContrast", 2 * batches.length, async () => {
    for (const { indices } of batches) {
      const a = indices.map((i) => pairs[i].clean.promptIds);
      const b = indices.map((i) => pairs[i].corrupted!.promptIds);
      const ca = (await model.runWithCache(a, { names, logitsAt: "last" })).cache;
      const cb = (await model.runWithCache(b, { names, logitsAt: "last" })).cache;
      for (let l = 0; l < L; l++) {
        const xa = closeAttention(ca.get(names[l]).data, a, close, H);
        const xb = closeAttention(cb.get(names[l]).data, b, close, H);
        for (let h = 0; h < H; h++)
          indices.forEach((pi, j) => {
            delta[l * H + h][pi] = xb[h][j] - xa[h][j];
            clean[l * H + h][pi] = xa[h][j];
          });
      }
    }
  });
  const rows: ClosedContrastRow[] = [];
  const groups = groupsOf(pairs.map((p) => p.clean.n));
  for (let k = 0; k < L * H; k++) {
    for (const g of groups) {
      const ci = bootstrapMean(
        g.idx.map((i) => delta[k][i]),
        opts.bootstrap ?? {},
      );
      const [layer, head] = [Math.floor(k / H), k % H];
      rows.push({
        layer,
        head,
        label: headLabel(layer, head),
        group: g.group,
        n: g.n,
        count: g.idx.length,
        effect: ci.estimate,
        lo: ci.lo,
        hi: ci.hi,
        unit: "fraction",
        cleanAttnClose: g.idx.reduce((s, i) => s + clean[k][i], 0) / g.idx.length,
      });
    }
  }
  return rows;
}
