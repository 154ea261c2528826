// core/: value types and seeds everything else uses. Public.
export * from "./errors";
export { Tensor } from "./tensor";
export type { Tokenizer, TokenEncoder } from "./tokenizer";
export type { TokenBatch, ToTokensOptions, ModelInput } from "./token-batch";
export {
  isTokenBatch,
  padTokens,
  toTokenBatch,
  validateTokenBatch,
  lastTokenIndex,
  paddedIndex,
  tokenIndex,
} from "./token-batch";
export { seededRandom, streamSeed } from "./random";
