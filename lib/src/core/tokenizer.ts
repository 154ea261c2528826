/**
 * The one tokenizer interface of parenlens. `loadTokenizer` (checkpoint/tokenizer.ts) implements
 * it over @huggingface/transformers; tests and users may pass any object with these members.
 * It lives in core/ because token batches (core/token-batch.ts) and the task (task/) read it.
 */
export interface Tokenizer {
  encode(text: string, opts?: { addBos?: boolean }): number[]; // addBos default true
  decode(ids: number[]): string;
  tokenToId(token: string): number | undefined; // exact vocab lookup
  idToToken(id: number): string;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  vocabSize: number;
}

/** The part of a `Tokenizer` that turning text into a `TokenBatch` needs (tests pass stubs of it). */
export type TokenEncoder = Pick<Tokenizer, "encode" | "padId" | "eosId">;
