/**
 * The package entry is curated (as TransformerLens' __init__.py): the model, cache, hooks,
 * analyses and notebook helpers at top level, test support under the `testing` namespace, and
 * internals not exported by accident.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as parenlens from "../../lib/src";

test("a researcher's names are at top level", () => {
  for (const name of [
    "HookedLlama",
    "ActivationCache",
    "Tensor",
    "hookNames",
    "actName",
    "tokenIndex",
    "validateIntervention",
    "loadCheckpoint",
    "loadTokenizer",
    "generateDataset",
    "makeCorruptedPairs",
    "makeClosedCountPairs",
    "pairInputs",
    "patchWhere",
    "checkPromptPairs",
    "stratifiedPermutationNull",
    "knockoutKeys",
    "headLogitLens",
    "closedCountContrast",
    "logitLens",
    "sublayerEffects",
    "countingHeads",
    "sweep",
    "setDefaultProgress",
    "withForwardProgress",
    "scorePrompts",
    "sublayerEffectsForwards",
    "countingHeadsForwards",
    "patchingGridForwards",
    "logForwardPasses",
    "progressLine",
    "showProgressInNotebook",
    "notebookDevice",
    "accuracyFinding",
    "binomialInterval",
    "findingSensitivity",
    "countingFinding",
    "showFigure",
    "showAttention",
    "showTable",
    "seededRandom",
    "ParenlensError",
    "HookNameError",
    "NonFiniteError",
  ]) {
    assert.equal(typeof (parenlens as Record<string, unknown>)[name], "function", name);
  }
});

test("test support lives in the testing namespace, not at top level", () => {
  const { testing } = parenlens;
  for (const name of [
    "referenceForward",
    "writeRandomCheckpoint",
    "writeSafetensors",
    "relativeError",
    "seededNormal",
  ]) {
    assert.equal(typeof (testing as Record<string, unknown>)[name], "function", `testing.${name}`);
    assert.equal(name in parenlens, false, `${name} at top level`);
  }
});

test("internals are not exported", () => {
  for (const name of [
    "mulberry32",
    "editDistance",
    "halfBitsToNumber",
    "f16ToFloat32",
    "float32ToBf16Bits",
    "encodeSafetensors",
    "promptSlice",
    "checkFeedNames",
    "firstNonFinite",
    "assertFinite",
    "findDuplicateKey",
    "checkModelOptions",
    "writeFilesAtomic",
    "SessionPlanner",
    "MathSessions",
    "buildUnembedGraph",
    "buildLlamaGraph",
    "emptyRejections",
    "writeFileAtomic",
    "dot",
    "unembedColumns",
  ]) {
    assert.equal(name in parenlens, false, name);
  }
});
