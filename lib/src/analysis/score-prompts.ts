/**
 * Accuracy over many prompts: the model's last-position logits of every prompt, scored as
 * `scoreLogits` scores one batch (logit difference, argmax among the runs and over the vocabulary,
 * probability and rank of the label), in batches of consecutive prompts.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import type { ParenRunTokens } from "../task/paren-tokens";
import { CounterfactualSpec, PromptScore, scoreLogits } from "./metrics";
import { StudyPrompt, checkStudyPrompts, modelParens } from "./study";
import { ProgressOptions, withForwardProgress } from "./forward-progress";
import { InputError } from "../core/errors";

export interface ScorePromptsOptions extends ProgressOptions {
  /**
   * Batch size
   *
   * Consecutive prompts per forward pass (left-padded to the longest of the batch).
   *
   * @default 64
   */
  batchSize?: number;
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the model's tokenizer
   */
  parens?: ParenRunTokens;
  /**
   * Counterfactual
   *
   * The token the label is compared against in the logit difference ("tokens" ids indexed like `prompts`).
   *
   * @default { kind: "strongest-wrong" }
   */
  counterfactual?: CounterfactualSpec;
}

/**
 * One score per prompt (index = its place in `prompts`), from one forward pass per batch.
 *
 * @example
 * const scores = await scorePrompts(model, data.splits.analysis, { parens });
 * summarizeScores(scores, { bootstrap: { samples: 1000, seed: 0 } }); // accuracy per n, with intervals
 */
export async function scorePrompts(
  model: HookedLlama,
  prompts: StudyPrompt[],
  opts: ScorePromptsOptions = {},
): Promise<PromptScore[]> {
  checkStudyPrompts(prompts, model.config.vocabSize);
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new InputError(`batchSize must be a positive integer, got ${JSON.stringify(batchSize)}`, {
      field: "batchSize",
    });
  const parens = modelParens(model, opts.parens);
  const cf = opts.counterfactual;
  const starts = Array.from({ length: Math.ceil(prompts.length / batchSize) }, (_, j) => j * batchSize);
  return withForwardProgress(model, opts, "scorePrompts", starts.length, async () => {
    const scores: PromptScore[] = [];
    for (const s of starts) {
      const batch = prompts.slice(s, s + batchSize);
      const logits = await model.run(
        batch.map((p) => p.promptIds),
        { logitsAt: "last" },
      ); // [batch, vocab]
      const counterfactual =
        cf?.kind === "tokens" ? { kind: "tokens" as const, ids: cf.ids.slice(s, s + batchSize) } : cf;
      scores.push(...scoreLogits(logits, batch, parens, { counterfactual }).map((x) => ({ ...x, index: x.index + s })));
    }
    return scores;
  });
}
