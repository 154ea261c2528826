// checkpoint/families/: one config parser per supported architecture, looked up by `architectures`.
import { FamilySpec } from "./family";
import { GEMMA } from "./gemma";
import { LLAMA } from "./llama";
import { MISTRAL } from "./mistral";
import { QWEN2 } from "./qwen2";
import { STARCODER2 } from "./starcoder2";

export type { Activation, ArchitectureFeatures, FamilySpec } from "./family";

/** The supported families, by HF architecture name. */
export const FAMILIES: FamilySpec[] = [LLAMA, QWEN2, MISTRAL, STARCODER2, GEMMA];
