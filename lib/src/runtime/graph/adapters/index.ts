// runtime/graph/adapters/: one graph adapter per architecture, chosen from config.architecture.
import type { LlamaConfig } from "../../../checkpoint/config";
import { ConfigError } from "../../../core/errors";
import type { ArchitectureAdapter } from "./adapter";
import { GEMMA_ADAPTER } from "./gemma";
import { LLAMA_ADAPTER } from "./llama";
import { MISTRAL_ADAPTER } from "./mistral";
import { QWEN2_ADAPTER } from "./qwen2";
import { STARCODER2_ADAPTER } from "./starcoder2";

export type { AdapterContext, ArchitectureAdapter } from "./adapter";

const ADAPTERS: ArchitectureAdapter[] = [
  LLAMA_ADAPTER,
  QWEN2_ADAPTER,
  MISTRAL_ADAPTER,
  STARCODER2_ADAPTER,
  GEMMA_ADAPTER,
];

/**
 * The adapter of a config's architecture. ConfigError for an architecture without one, or a
 * (hand-built) config whose norm / MLP / embedding scaling is not the architecture's.
 */
export function adapterFor(
  config: Pick<LlamaConfig, "architecture" | "norm" | "mlp" | "embedScale">,
): ArchitectureAdapter {
  const a = ADAPTERS.find((x) => x.architecture === config.architecture);
  if (!a)
    throw new ConfigError(
      `no graph adapter for architecture ${JSON.stringify(config.architecture)}; supported: ${ADAPTERS.map((x) => x.architecture).join(", ")}`,
      { field: "architectures" },
    );
  for (const [k, v] of Object.entries(a.features) as [keyof typeof a.features, unknown][]) {
    if (config[k] !== v)
      throw new ConfigError(
        `config ${k} ${JSON.stringify(config[k])} does not fit ${a.architecture}, whose graph has ${k} ${JSON.stringify(v)}`,
        { field: k },
      );
  }
  return a;
}
