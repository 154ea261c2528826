/**
 * Finding 1, layer-wise: the residual stream at the last position before and after every layer
 * ("L pre" = blocks.L.hook_resid_pre, "L post" = blocks.L.hook_resid_post), decoded through the
 * final RMSNorm and the unembedding, scored like the model's own logits (logit difference,
 * accuracy) per layer and per n.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { BootstrapOptions } from "./bootstrap";
import { CounterfactualSpec, MetricSummaryRow, PromptScore, scoreRow, summarizeScores } from "./metrics";
import type { ActivationCache } from "../hooks/activation-cache";
import { ParenRunTokens } from "../task/paren-tokens";
import { StudyPrompt, checkStudyPrompts, lengthBatches, modelParens } from "./study";
import { ProgressOptions, withForwardProgress } from "./forward-progress";

/**
 * How each residual vector is normalised before the unembedding:
 * - "own-rms" (default, the standard logit lens): x / sqrt(mean(x²) + eps) × final norm weight,
 *   i.e. the final RMSNorm applied to that residual as if it were the last one;
 * - "cached-final": x / (the run's cached ln_final.hook_scale) × final norm weight (TransformerLens'
 *   apply_ln_to_stack): linear in x, so contributions add up to the final logits.
 */
export type LensNormalisation = "own-rms" | "cached-final";

export interface LogitLensOptions extends ProgressOptions {
  /**
   * Normalisation
   *
   * How each residual vector is normalised before the unembedding (see `LensNormalisation`).
   *
   * @default "own-rms"
   */
  normalisation?: LensNormalisation;
  /**
   * Counterfactual
   *
   * The token the label is compared against in the logit difference; "tokens" ids are indexed like `prompts`.
   *
   * @default { kind: "strongest-wrong" }
   */
  counterfactual?: CounterfactualSpec;
  /**
   * Full vocabulary
   *
   * Decode over the whole vocabulary: needed for whole-vocabulary accuracy, probability and rank.
   * false decodes only the paren runs and the label/counterfactual tokens (cheap on a 32k
   * vocabulary); whole-vocabulary fields are then NaN / null.
   *
   * @default true
   */
  fullVocab?: boolean;
  /**
   * Batch size
   *
   * Prompts per forward pass (batches hold prompts of one token count).
   *
   * @default 32
   */
  batchSize?: number;
  /**
   * Bootstrap
   *
   * Resamples, seed and level of every interval.
   *
   * @default { samples: 1000, seed: 0, level: 0.95 }
   */
  bootstrap?: BootstrapOptions;
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the model's tokenizer
   */
  parens?: ParenRunTokens;
}

export interface LensPoint {
  /** "0 pre", "0 post", "1 pre", ... */
  point: string;
  pointIndex: number;
  layer: number;
  where: "pre" | "post";
  hook: string;
}

export interface LogitLensRow extends MetricSummaryRow {
  point: string;
  pointIndex: number;
  layer: number;
  where: "pre" | "post";
}

export interface LogitLensPromptRow {
  /** Index of the prompt in the input list. */
  prompt: number;
  id: string | null;
  n: number;
  point: string;
  pointIndex: number;
  layer: number;
  where: "pre" | "post";
  logitDiff: number;
  /** Whole-vocabulary argmax is the label (null when fullVocab is false). */
  correct: boolean | null;
  parenCorrect: boolean;
  parenArgmaxCount: number;
  prob: number | null;
  rank: number | null;
}

export interface LogitLensResult {
  /** One row per point and n, plus a pooled "all" row per point (bootstrap intervals). */
  rows: LogitLensRow[];
  perPrompt: LogitLensPromptRow[];
  metadata: {
    normalisation: LensNormalisation;
    normalisationDescription: string;
    counterfactual: string;
    fullVocab: boolean;
    points: LensPoint[];
    promptCount: number;
  };
}

/** The 2 × numLayers lens points in forward order. */
export function lensPoints(numLayers: number): LensPoint[] {
  const out: LensPoint[] = [];
  for (let l = 0; l < numLayers; l++) {
    out.push({ point: `${l} pre`, pointIndex: 2 * l, layer: l, where: "pre", hook: `blocks.${l}.hook_resid_pre` });
    out.push({
      point: `${l} post`,
      pointIndex: 2 * l + 1,
      layer: l,
      where: "post",
      hook: `blocks.${l}.hook_resid_post`,
    });
  }
  return out;
}

function describeCounterfactual(cf: CounterfactualSpec): string {
  if (cf.kind === "strongest-wrong") return "strongest wrong count (max logit over the other paren runs)";
  if (cf.kind === "count") return `the run of ${cf.count} parens`;
  return "given token per prompt";
}

/** The options with their defaults, checked against the prompts. */
function lensSettings(model: HookedLlama, prompts: StudyPrompt[], opts: LogitLensOptions) {
  checkStudyPrompts(prompts, model.config.vocabSize);
  const normalisation = opts.normalisation ?? "own-rms";
  if (normalisation !== "own-rms" && normalisation !== "cached-final") {
    throw new InputError(`normalisation must be "own-rms" or "cached-final", got ${JSON.stringify(normalisation)}`, {
      field: "normalisation",
    });
  }
  const cf: CounterfactualSpec = opts.counterfactual ?? { kind: "strongest-wrong" };
  if (cf.kind === "tokens" && cf.ids.length !== prompts.length) {
    throw new InputError(`counterfactual tokens: ${cf.ids.length} ids for ${prompts.length} prompts`, {
      field: "counterfactual.ids",
    });
  }
  return { normalisation, cf, fullVocab: opts.fullVocab ?? true, parens: modelParens(model, opts.parens) };
}

/**
 * Run the logit lens over prompts (batched by equal length): every residual point decoded through
 * the final norm and W_U at the last position, scored per prompt and summarised per n and pooled.
 *
 * @example
 * const lens = await logitLens(model, data.splits.analysis, { bootstrap: { samples: 1000, seed: 0 } });
 * lens.rows.filter((r) => r.group === "all").map((r) => [r.point, r.logitDiff]); // LD per layer, pooled
 */
export async function logitLens(
  model: HookedLlama,
  prompts: StudyPrompt[],
  opts: LogitLensOptions = {},
): Promise<LogitLensResult> {
  const { normalisation, cf, fullVocab, parens } = lensSettings(model, prompts, opts);
  const points = lensPoints(model.config.numLayers);
  // With fullVocab false only these columns are decoded; every other logit stays -Infinity.
  const sparseIds = [
    ...new Set([...parens.ids, ...prompts.map((p) => p.labelId), ...(cf.kind === "tokens" ? cf.ids : [])]),
  ];
  const scores: PromptScore[][] = points.map(() => new Array(prompts.length));
  const names = [...points.map((p) => p.hook), "ln_final.hook_scale"];
  const sparseRow = new Float32Array(fullVocab ? 0 : model.config.vocabSize); // [vocab]
  const batches = lengthBatches(prompts, (p) => p.promptIds.length, opts.batchSize ?? 32);
  await withForwardProgress(model, opts, "logitLens", batches.length, async () => {
    for (const { indices } of batches) {
      const { cache } = await model.runWithCache(
        indices.map((i) => prompts[i].promptIds),
        { names, logitsAt: "last" }, // the lens decodes the cached residuals: no [batch, pos, vocab] logits
      );
      const finalScale = cache.atPos("ln_final.hook_scale", "last"); // [batch, one]
      const norm = normalisation === "own-rms" ? "own-rms" : finalScale;
      const decode = (stack: Tensor) => model.unembed(stack, { norm, columns: fullVocab ? undefined : sparseIds });
      await decodePoints(
        cache,
        points,
        decode,
        LENS_CHUNK_VALUES / (fullVocab ? model.config.vocabSize : 1),
        (k, b, row) => {
          const pi = indices[b];
          scores[k][pi] = scoreRow(
            fullVocab ? row : spread(row, sparseIds, sparseRow),
            pi,
            prompts[pi].n,
            prompts[pi].labelId,
            parens,
            cf,
          );
        },
      );
    }
  });
  return {
    ...lensRows(scores, points, prompts, fullVocab, opts.bootstrap),
    metadata: {
      normalisation,
      normalisationDescription: NORMALISATION_NOTES[normalisation],
      counterfactual: describeCounterfactual(cf),
      fullVocab,
      points,
      promptCount: prompts.length,
    },
  };
}

const NORMALISATION_NOTES: Record<LensNormalisation, string> = {
  "own-rms":
    "each residual divided by its own RMS (sqrt(mean(x^2)+eps)), times the final norm weight, then W_U (standard logit lens)",
  "cached-final":
    "each residual divided by the run's cached final-norm scale (ln_final.hook_scale), times the final norm weight, then W_U (TransformerLens apply_ln_to_stack)",
};

/** Summary rows per point and n (with intervals) and one row per prompt and point. */
function lensRows(
  scores: PromptScore[][],
  points: LensPoint[],
  prompts: StudyPrompt[],
  fullVocab: boolean,
  bootstrap: BootstrapOptions | undefined,
): { rows: LogitLensRow[]; perPrompt: LogitLensPromptRow[] } {
  const rows: LogitLensRow[] = [];
  const perPrompt: LogitLensPromptRow[] = [];
  points.forEach((pt, k) => {
    const s = scores[k];
    const at = { point: pt.point, pointIndex: pt.pointIndex, layer: pt.layer, where: pt.where };
    for (const r of summarizeScores(s, { bootstrap })) {
      const row: LogitLensRow = { ...r, ...at };
      if (!fullVocab) {
        row.accuracy = row.accuracyLo = row.accuracyHi = NaN;
        row.meanProb = row.meanRank = row.medianRank = NaN;
      }
      rows.push(row);
    }
    s.forEach((x, pi) =>
      perPrompt.push({
        prompt: pi,
        id: prompts[pi].id ?? null,
        n: x.n,
        ...at,
        logitDiff: x.logitDiff,
        correct: fullVocab ? x.correct : null,
        parenCorrect: x.parenCorrect,
        parenArgmaxCount: x.parenArgmaxCount,
        prob: fullVocab ? x.prob : null,
        rank: fullVocab ? x.rank : null,
      }),
    );
  });
  return { rows, perPrompt };
}

/** Values (rows × vocab or columns) decoded in one unembedding call: bounds the transient logits. */
const LENS_CHUNK_VALUES = 1 << 24;

/**
 * Decode every point's last-position residual [batch, d_model] in chunks of points (one
 * unembedding call per chunk, at most about `rowsPerChunk` rows), handing each decoded row to
 * `use(point, batchIndex, row)`: the lens never holds more than one chunk's logits.
 */
async function decodePoints(
  cache: ActivationCache,
  points: LensPoint[],
  decode: (stack: Tensor) => Promise<Tensor>,
  rowsPerChunk: number,
  use: (point: number, b: number, row: Float32Array) => void,
): Promise<void> {
  const B = cache.batch.ids.length;
  const D = cache.model.hiddenSize;
  const perChunk = Math.max(1, Math.floor(rowsPerChunk / B));
  for (let k0 = 0; k0 < points.length; k0 += perChunk) {
    const chunk = points.slice(k0, k0 + perChunk);
    const data = new Float32Array(chunk.length * B * D); // [point, batch, d_model]
    chunk.forEach((p, i) => data.set(cache.atPos(p.hook, "last").data, i * B * D));
    const out = await decode(new Tensor(data, [chunk.length, B, D], ["point", "batch", "d_model"])); // [point, batch, vocab | column]
    const W = out.shape[2];
    for (let i = 0; i < chunk.length; i++)
      for (let b = 0; b < B; b++) use(k0 + i, b, out.data.subarray((i * B + b) * W, (i * B + b + 1) * W));
  }
}

/** Decoded columns written into `row` [vocab] at their ids, -Infinity elsewhere (the row is reused). */
function spread(cols: Float32Array, ids: number[], row: Float32Array): Float32Array {
  row.fill(-Infinity);
  ids.forEach((id, j) => (row[id] = cols[j]));
  return row;
}
