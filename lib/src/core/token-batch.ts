/**
 * TokenBatch: prompts of different lengths as one padded batch with its attention mask and
 * position ids. Left padding by default, so index -1 is every prompt's last token. Positions given
 * to the library (interventions, cache.atPos) are each prompt's own token indices, mapped to padded
 * indices by paddedIndex / tokenIndex.
 */
import { InputError } from "./errors";
import type { TokenEncoder } from "./tokenizer";

export interface TokenBatch {
  ids: number[][]; // [batch, pos], padded
  attentionMask: number[][]; // [batch, pos], 1 = token, 0 = pad
  positions: number[][]; // [batch, pos], cumsum(mask) - 1 clipped at 0
  lengths: number[]; // [batch] unpadded lengths
  padding: "left" | "right";
}

/** How text or token ids become one padded batch. */
export interface ToTokensOptions {
  /**
   * Padding side
   *
   * "left" puts every prompt's last token at index -1 (what "last"-position reads and in-graph
   * slicing assume); "right" keeps positions aligned at the start.
   *
   * @default "left"
   */
  padding?: "left" | "right";
  /**
   * Prepend BOS
   *
   * Add the tokenizer's BOS token before each text (text input only; token ids are taken as given).
   *
   * @default true
   */
  addBos?: boolean;
  /**
   * Pad id
   *
   * The id written at pad positions; they are masked out, so any valid id works.
   *
   * @default the tokenizer's pad id, else its eos id, else 0
   */
  padId?: number;
}

export type ModelInput = string | string[] | number[][] | TokenBatch;

export function isTokenBatch(x: unknown): x is TokenBatch {
  return (
    typeof x === "object" &&
    x !== null &&
    !Array.isArray(x) &&
    Array.isArray((x as TokenBatch).ids) &&
    Array.isArray((x as TokenBatch).attentionMask)
  );
}

/**
 * Pad token id lists into a batch, with its attention mask and position ids.
 *
 * @example
 * const batch = padTokens([[1, 5, 9], [1, 7]]); // left padding
 * batch.ids; // [[1, 5, 9], [0, 1, 7]]; batch.positions: [[0, 1, 2], [0, 0, 1]]
 */
export function padTokens(seqs: number[][], opts: { padding?: "left" | "right"; padId?: number } = {}): TokenBatch {
  const padding = opts.padding ?? "left";
  const padId = opts.padId ?? 0;
  checkPadding(padding, "padding");
  if (!Number.isInteger(padId) || padId < 0)
    throw new InputError(`padId is ${JSON.stringify(padId)}, expected a non-negative integer token id`, {
      field: "padId",
    });
  if (seqs.length === 0) throw new InputError("Empty batch: give at least one prompt", { field: "input" });
  seqs.forEach((s, i) => {
    if (!Array.isArray(s) || s.length === 0)
      throw new InputError(`Prompt ${i} has no tokens`, { field: `input[${i}]` });
    s.forEach((t, j) => {
      if (!Number.isInteger(t) || t < 0)
        throw new InputError(`Prompt ${i} token ${j} is ${t}, expected a non-negative integer id`, {
          field: `input[${i}][${j}]`,
        });
    });
  });
  const P = Math.max(...seqs.map((s) => s.length));
  const ids: number[][] = [];
  const attentionMask: number[][] = [];
  for (const s of seqs) {
    const pad = P - s.length;
    const padIds = new Array(pad).fill(padId);
    const ones = new Array(s.length).fill(1);
    const zeros = new Array(pad).fill(0);
    ids.push(padding === "left" ? [...padIds, ...s] : [...s, ...padIds]);
    attentionMask.push(padding === "left" ? [...zeros, ...ones] : [...ones, ...zeros]);
  }
  const positions = attentionMask.map((row) => {
    let c = 0;
    return row.map((m) => {
      c += m;
      return Math.max(c - 1, 0);
    });
  });
  return { ids, attentionMask, positions, lengths: seqs.map((s) => s.length), padding };
}

/**
 * Text, texts, token id lists or an existing TokenBatch → TokenBatch (HookedLlama.toTokens calls it).
 *
 * @example
 * const batch = toTokenBatch(["print(str(", "x = f("], tokenizer, { padding: "right" });
 */
export function toTokenBatch(
  input: ModelInput,
  tokenizer: TokenEncoder | null,
  opts: ToTokensOptions = {},
): TokenBatch {
  if (isTokenBatch(input)) {
    validateTokenBatch(input);
    return input;
  }
  const padId = opts.padId ?? tokenizer?.padId ?? tokenizer?.eosId ?? 0;
  if (
    typeof input === "string" ||
    (Array.isArray(input) && input.length > 0 && (input as unknown[]).every((x) => typeof x === "string"))
  ) {
    if (!tokenizer)
      throw new InputError("Text input needs a tokenizer; this model has none, give token ids (number[][])", {
        field: "input",
      });
    const texts = typeof input === "string" ? [input] : (input as string[]);
    return padTokens(
      texts.map((t) => tokenizer.encode(t, { addBos: opts.addBos ?? true })),
      { padding: opts.padding, padId },
    );
  }
  if (Array.isArray(input) && (input as unknown[]).every((x) => Array.isArray(x))) {
    return padTokens(input as number[][], { padding: opts.padding, padId });
  }
  throw new InputError("Input must be a string, string[], number[][] (token ids) or a TokenBatch", { field: "input" });
}

function checkPadding(padding: unknown, field: string): void {
  if (padding !== "left" && padding !== "right")
    throw new InputError(`${field} is ${JSON.stringify(padding)}, expected "left" or "right"`, { field });
}

/**
 * A hand-made TokenBatch must be rectangular, with a 0/1 mask and positions; every row has at
 * least one real token, its mask is one run of 1s on the side its `padding` says, and `lengths`
 * agree with the mask (the runtime reads the last token from them).
 */
export function validateTokenBatch(b: TokenBatch): void {
  checkPadding(b.padding, "TokenBatch.padding");
  const B = b.ids.length;
  if (B === 0) throw new InputError("Empty batch: give at least one prompt", { field: "ids" });
  if (!Array.isArray(b.ids[0]))
    throw new InputError("TokenBatch.ids[0] must be an array of token ids", { field: "ids[0]" });
  const P = b.ids[0].length;
  for (const [field, rows] of [
    ["ids", b.ids],
    ["attentionMask", b.attentionMask],
    ["positions", b.positions],
  ] as const) {
    if (!Array.isArray(rows) || rows.length !== B)
      throw new InputError(`TokenBatch.${field} must have ${B} rows`, { field });
    rows.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== P)
        throw new InputError(`TokenBatch.${field}[${i}] must have ${P} entries (the padded length)`, {
          field: `${field}[${i}]`,
        });
      r.forEach((t, j) => {
        if (!Number.isInteger(t) || t < 0)
          throw new InputError(`TokenBatch.${field}[${i}][${j}] is ${t}, expected a non-negative integer`, {
            field: `${field}[${i}][${j}]`,
          });
        if (field === "attentionMask" && t > 1)
          throw new InputError(`TokenBatch.attentionMask[${i}][${j}] is ${t}, expected 0 or 1`, {
            field: `attentionMask[${i}][${j}]`,
          });
      });
    });
  }
  checkMaskAgainstLengths(b, P);
}

/** Each mask row: ≥ 1 real token, contiguous on the padding side, as many 1s as `lengths` says. */
function checkMaskAgainstLengths(b: TokenBatch, P: number): void {
  if (!Array.isArray(b.lengths) || b.lengths.length !== b.ids.length)
    throw new InputError(`TokenBatch.lengths must have ${b.ids.length} entries (one per row)`, { field: "lengths" });
  b.attentionMask.forEach((row, i) => {
    const real = row.reduce((a, m) => a + m, 0);
    if (real === 0)
      throw new InputError(`TokenBatch row ${i} has no real token (its attentionMask is all 0)`, {
        field: `attentionMask[${i}]`,
      });
    if (b.lengths[i] !== real)
      throw new InputError(
        `TokenBatch.lengths[${i}] is ${JSON.stringify(b.lengths[i])} but attentionMask[${i}] has ${real} real tokens`,
        { field: `lengths[${i}]` },
      );
    const start = b.padding === "left" ? P - real : 0; // where the run of 1s must be
    for (let j = 0; j < P; j++) {
      if (row[j] !== (j >= start && j < start + real ? 1 : 0))
        throw new InputError(
          `TokenBatch.attentionMask[${i}] is not ${b.padding}-padded: expected ${real} ones ${b.padding === "left" ? "at the end" : "at the start"} and zeros elsewhere`,
          { field: `attentionMask[${i}]` },
        );
    }
  });
}

/**
 * Padded index of a prompt's own token `pos` (0 = its first token, BOS included; negative counts
 * from its last token, -1 = last), for a prompt of `length` tokens in a row of `padded` positions.
 * Returns null when `pos` is outside the prompt (-length..length-1).
 *
 * @example
 * paddedIndex(0, 3, 5, "left"); // 2: a 3-token prompt starts after 2 pad positions
 * paddedIndex(-1, 3, 5, "right"); // 2
 */
export function paddedIndex(pos: number, length: number, padded: number, padding: "left" | "right"): number | null {
  const q = pos < 0 ? pos + length : pos;
  if (!Number.isInteger(q) || q < 0 || q >= length) return null;
  return padding === "left" ? padded - length + q : q;
}

/**
 * Index along pos of prompt b's own token `pos` (see paddedIndex); throws InputError naming the
 * prompt when it has no such token.
 *
 * @example
 * const batch = padTokens([[1, 5, 9], [1, 7]]); // left padding: [[1, 5, 9], [0, 1, 7]]
 * tokenIndex(batch, 1, 0); // 1 (prompt 1's BOS)
 */
export function tokenIndex(batch: Pick<TokenBatch, "ids" | "lengths" | "padding">, b: number, pos: number): number {
  const n = batch.lengths[b];
  const q = paddedIndex(pos, n, batch.ids[b].length, batch.padding);
  if (q === null)
    throw new InputError(
      `Position ${pos} is outside prompt ${b} (${n} tokens): positions are each prompt's own token indices, -${n}..${n - 1}`,
      { field: "pos" },
    );
  return q;
}

/**
 * Index along pos of prompt b's last real token (left padding: P-1; right padding: length-1).
 */
export function lastTokenIndex(batch: TokenBatch, b: number): number {
  return batch.padding === "left" ? batch.ids[b].length - 1 : batch.lengths[b] - 1;
}
