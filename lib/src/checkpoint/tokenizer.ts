/**
 * Tokenizer: a small synchronous wrapper over @huggingface/transformers' PreTrainedTokenizer,
 * built from a local folder's tokenizer.json (+ tokenizer_config.json, special_tokens_map.json).
 * Nothing is fetched: the tokenizer is constructed from the parsed files.
 */
import * as fs from "fs";
import * as path from "path";
import { PreTrainedTokenizer } from "@huggingface/transformers";
import { CheckpointError, InputError } from "../core/errors";
import type { Tokenizer } from "../core/tokenizer";
import { duplicateKeyText, findDuplicateKey } from "./json-text";
import { kindText, pathKind } from "./path-kind";

export type { Tokenizer } from "../core/tokenizer";

type Json = Record<string, unknown>;

function readJson(file: string, required: boolean): Json | null {
  const kind = pathKind(file);
  if (kind === "missing" && !required) return null;
  if (kind !== "file") throw new CheckpointError(`${file} ${kindText(kind)}`, { file });
  let text: string;
  let v: unknown;
  try {
    text = fs.readFileSync(file, "utf8");
    v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
  } catch (e) {
    throw new CheckpointError(`${file} is not a valid JSON object: ${(e as Error).message}`, { file });
  }
  const dup = findDuplicateKey(text);
  if (dup) throw new CheckpointError(`${file}: ${duplicateKeyText(dup)}`, { file, field: dup.key });
  return v as Json;
}

/** Special tokens may be strings or AddedToken objects ({content: "<s>", ...}). */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json).content === "string")
    return (v as Json).content as string;
  return null;
}

const SPECIALS = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "mask_token"];

/** Wraps a PreTrainedTokenizer with the Tokenizer interface (add BOS ourselves: Llama semantics). */
class HfTokenizer implements Tokenizer {
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly vocabSize: number;
  private readonly idToTok: Map<number, string>;

  constructor(
    private readonly hf: PreTrainedTokenizer,
    private readonly folder: string,
    specials: Record<string, string | null>,
  ) {
    const vocab = hf.get_vocab() as Map<string, number>;
    this.idToTok = new Map([...vocab].map(([t, i]) => [i, t]));
    this.vocabSize = Math.max(-1, ...vocab.values()) + 1;
    const id = (t: string | null) => (t === null ? null : (vocab.get(t) ?? null));
    this.bosId = id(specials.bos_token);
    this.eosId = id(specials.eos_token);
    this.padId = id(specials.pad_token);
  }

  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    if (typeof text !== "string")
      throw new InputError(`encode expects a string, got ${typeof text}`, { field: "text" });
    const ids = this.hf.encode(text, { add_special_tokens: false }) as number[];
    return (opts.addBos ?? true) && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  /** Special tokens are kept (as transformers' tokenizer.decode does by default). */
  decode(ids: number[]): string {
    if (ids.length === 0) return "";
    for (const i of ids) {
      if (!Number.isInteger(i) || !this.idToTok.has(i)) {
        throw new InputError(`token id ${i} is not in the vocabulary of ${this.folder} (size ${this.vocabSize})`, {
          field: "ids",
        });
      }
    }
    return this.hf.decode(ids, { skip_special_tokens: false });
  }

  tokenToId(token: string): number | undefined {
    return (this.hf.get_vocab() as Map<string, number>).get(token);
  }

  idToToken(id: number): string {
    const t = this.idToTok.get(id);
    if (t === undefined)
      throw new InputError(`token id ${id} is not in the vocabulary of ${this.folder} (size ${this.vocabSize})`, {
        field: "id",
      });
    return t;
  }
}

/**
 * Load the tokenizer of a checkpoint folder. Needs tokenizer.json (the "fast" format);
 * tokenizer_config.json and special_tokens_map.json are optional. Throws CheckpointError.
 *
 * @example
 * const tok = loadTokenizer("data/models/parenlens-code-6l");
 * tok.encode("print(str("); // [bos, ...ids]
 * tok.decode(tok.encode("print(str(", { addBos: false })); // "print(str("
 */
export function loadTokenizer(folder: string): Tokenizer {
  const tokFile = path.join(folder, "tokenizer.json");
  if (pathKind(tokFile) === "missing") {
    const sp = fs.existsSync(path.join(folder, "tokenizer.model"))
      ? " (found tokenizer.model: convert it once with Python transformers, AutoTokenizer.from_pretrained(folder).save_pretrained(folder))"
      : "";
    throw new CheckpointError(`${tokFile} not found: a tokenizer.json is needed${sp}`, { file: tokFile });
  }
  const tokenizerJson = readJson(tokFile, true) as Json;
  if (typeof tokenizerJson.model !== "object" || tokenizerJson.model === null) {
    throw new CheckpointError(`${tokFile}: no "model" section; not a Hugging Face tokenizers file`, {
      file: tokFile,
      field: "model",
    });
  }
  checkModelType(tokenizerJson, tokFile);
  const tokConfig = readJson(path.join(folder, "tokenizer_config.json"), false) ?? {};
  const specialMap = readJson(path.join(folder, "special_tokens_map.json"), false) ?? {};

  // Special tokens: tokenizer_config, else special_tokens_map, else Llama's <s>/</s>/<unk> when in the vocab.
  const vocab = (tokenizerJson.model as Json).vocab as Record<string, number> | undefined;
  const added = Array.isArray(tokenizerJson.added_tokens)
    ? (tokenizerJson.added_tokens as Json[]).map((t) => t.content)
    : [];
  const inVocab = (t: string) =>
    Array.isArray(vocab)
      ? (vocab as unknown[]).some((e) => Array.isArray(e) && e[0] === t) // Unigram: [[token, score], ...]
      : vocab !== undefined && typeof vocab === "object" && vocab !== null && Object.hasOwn(vocab, t);
  const known = (t: string) => inVocab(t) || added.includes(t);
  const llamaDefault: Record<string, string> = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" };
  const specials: Record<string, string | null> = {};
  const config: Json = { ...tokConfig };
  for (const key of SPECIALS) {
    let t = tokenString(tokConfig[key]) ?? tokenString(specialMap[key]);
    if (t !== null && !known(t)) {
      const from = tokenString(tokConfig[key]) !== null ? "tokenizer_config.json" : "special_tokens_map.json";
      // a BOS outside the vocabulary would make every prompt run without BOS, without a word
      throw new CheckpointError(
        `${path.join(folder, from)}: ${key} ${JSON.stringify(t)} is not in the vocabulary of ${tokFile} (model.vocab or added_tokens)`,
        { file: path.join(folder, from), field: key },
      );
    }
    if (t === null && key in llamaDefault && !(key in tokConfig) && known(llamaDefault[key])) t = llamaDefault[key];
    specials[key] = t;
    if (t === null) delete config[key];
    else config[key] = t;
  }
  let hf: PreTrainedTokenizer;
  try {
    hf = new PreTrainedTokenizer(tokenizerJson, config);
  } catch (e) {
    throw new CheckpointError(`${tokFile} cannot be loaded by @huggingface/transformers: ${(e as Error).message}`, {
      file: tokFile,
    });
  }
  try {
    hf.encode("print(len(x", { add_special_tokens: false }); // fail here, naming the file, not on the first prompt
  } catch (e) {
    throw new CheckpointError(`${tokFile} loads but cannot encode text: ${(e as Error).message}`, {
      file: tokFile,
      field: "model",
    });
  }
  return new HfTokenizer(hf, folder, specials);
}

/** Tokenizer model types @huggingface/transformers implements (tokenizer.json "model.type"). */
const MODEL_TYPES = ["BPE", "WordPiece", "Unigram", "WordLevel"];

function checkModelType(tokenizerJson: Json, tokFile: string): void {
  const type = (tokenizerJson.model as Json).type;
  if (type === undefined) return; // old files without a type: transformers.js infers it from the fields
  if (typeof type !== "string" || !MODEL_TYPES.includes(type))
    throw new CheckpointError(
      `${tokFile}: field "model.type" is ${JSON.stringify(type)}; supported tokenizer models are ${MODEL_TYPES.join(", ")}`,
      { file: tokFile, field: "model.type" },
    );
}
