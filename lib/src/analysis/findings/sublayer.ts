/** Finding 2 (notebook 03): attention vs MLP sub-layers, per method family, with paired contrasts. */
import { InputError } from "../../core/errors";
import { meanOf } from "../stats";
import { BootstrapOptions, bootstrapIndices } from "../bootstrap";
import { Finding, Verdict, finish, num } from "./finding";

/** What the sub-layer finding reads of an effect row (SublayerEffectRow fits; pooled rows: n = null). */
export interface SublayerRow {
  layer: number;
  sublayer: "attn" | "mlp";
  method: string;
  n: number | null;
  effect: number;
  lo: number;
  hi: number;
  unit: "logit" | "fraction";
}

export interface SublayerFindingOptions {
  /**
   * Logit threshold
   *
   * |effect| at or above this "matters", for methods in logit units.
   *
   * @default 0.1 × |cleanLogitDiff| when given, else 0.5
   */
  logitThreshold?: number;
  /**
   * Clean logit difference
   *
   * Mean clean LD (`sublayerEffects(...).baseline`, pooled): sets the default logit threshold;
   * ≤ 0 (the model fails the task) → does not replicate.
   *
   * @default none
   */
  cleanLogitDiff?: number;
  /**
   * Fraction threshold
   *
   * |effect| at or above this "matters", for fraction-of-gap methods (patching).
   *
   * @default 0.1
   */
  fractionThreshold?: number;
}

export interface SublayerMethodSummary {
  method: string;
  unit: "logit" | "fraction";
  threshold: number;
  /** Σ over layers of |pooled effect|. */
  totalAttn: number;
  totalMlp: number;
  /** Layers whose effect's interval excludes 0 and whose |effect| ≥ threshold. */
  attnLayers: number[];
  mlpLayers: number[];
  bothMatter: boolean;
  /** Σ|effect| larger for attention, in a method where at least one sub-layer matters. */
  mhaMore: boolean;
}

/**
 * Per-method totals and "matters" layers from pooled rows.
 *
 * @example
 * sublayerSummaries(res.rows, { cleanLogitDiff: 3.2 }).map((s) => [s.method, s.totalAttn, s.totalMlp]);
 */
export function sublayerSummaries(rows: SublayerRow[], opts: SublayerFindingOptions = {}): SublayerMethodSummary[] {
  const pooled = rows.filter((r) => r.n === null);
  const methods = [...new Set(pooled.map((r) => r.method))];
  const logitThr =
    opts.logitThreshold ??
    (opts.cleanLogitDiff !== undefined && Number.isFinite(opts.cleanLogitDiff)
      ? 0.1 * Math.abs(opts.cleanLogitDiff)
      : 0.5);
  const fracThr = opts.fractionThreshold ?? 0.1;
  return methods.map((method) => {
    const m = pooled.filter((r) => r.method === method);
    const unit = m[0].unit;
    const threshold = unit === "fraction" ? fracThr : logitThr;
    const matters = (r: SublayerRow) => Math.abs(r.effect) >= threshold && (r.lo > 0 || r.hi < 0);
    const total = (s: "attn" | "mlp") =>
      m.filter((r) => r.sublayer === s).reduce((a, r) => a + (Number.isFinite(r.effect) ? Math.abs(r.effect) : 0), 0);
    const layers = (s: "attn" | "mlp") =>
      m
        .filter((r) => r.sublayer === s && matters(r))
        .map((r) => r.layer)
        .sort((a, b) => a - b);
    const attnLayers = layers("attn");
    const mlpLayers = layers("mlp");
    const totalAttn = total("attn");
    const totalMlp = total("mlp");
    // A method where no sub-layer matters casts no vote on which matters more.
    const anyMatters = attnLayers.length + mlpLayers.length > 0;
    return {
      method,
      unit,
      threshold,
      totalAttn,
      totalMlp,
      attnLayers,
      mlpLayers,
      bothMatter: attnLayers.length > 0 && mlpLayers.length > 0,
      mhaMore: anyMatters && totalAttn > totalMlp,
    };
  });
}

/** One prompt's value for one sub-layer and method (SublayerPromptValue fits): ablation/DLA effect, or the patched run's LD. */
export interface SublayerPromptRow {
  prompt: number;
  n: number;
  layer: number;
  sublayer: "attn" | "mlp";
  method: string;
  value: number;
}

/** What finding 2 reads of a sub-layer run (`sublayerEffects(...)` fits): per-prompt values and LDs. */
export interface SublayerEvidence {
  perPrompt: SublayerPromptRow[];
  /** Each pair's clean and corrupted LD, by prompt index. */
  promptBaseline: { prompt: number; n: number; clean: number; corrupted: number }[];
}

/**
 * The methods in families of closely related methods: zero and mean ablation remove a sub-layer;
 * denoising and noising patch it between clean and corrupted runs; DLA reads its direct effect.
 * Finding 2 asks each family, not a vote of correlated methods.
 */
export const SUBLAYER_METHOD_FAMILIES: Record<string, string[]> = {
  ablation: ["zero-ablation", "mean-ablation"],
  patching: ["denoising", "noising"],
  attribution: ["dla"],
};

/** The rule of finding 2 (thresholds, prompts, layers, bootstrap). */
export interface SublayerRuleOptions extends SublayerFindingOptions {
  /**
   * Headline counts
   *
   * The n the verdict rests on (n = 1, the default run, is reported per n beside it).
   *
   * @default [2, 3, 4]
   */
  headline?: number[];
  /**
   * Excluded layers
   *
   * Layers left out of the totals and of "matters" (e.g. [0]: layer 0 carries the corrupted
   * token's identity when every position is patched).
   *
   * @default []
   */
  excludeLayers?: number[];
  /**
   * Bootstrap
   *
   * Resamples and seed of the per-layer and paired intervals (prompts resampled together across sub-layers).
   *
   * @default { samples: 1000, seed: 0 }
   */
  bootstrap?: BootstrapOptions;
}

/** One method on one set of prompts: per-layer effects, totals and the paired contrast. */
export interface SublayerContrast {
  method: string;
  family: string;
  unit: "logit" | "fraction";
  threshold: number;
  totalAttn: number;
  totalMlp: number;
  /** Σ|attn| − Σ|MLP| over the kept layers, with a paired bootstrap interval. */
  diff: number;
  diffLo: number;
  diffHi: number;
  attnLayers: number[];
  mlpLayers: number[];
  bothMatter: boolean;
}

const PATCHING = new Set(["denoising", "noising"]);
const familyOf = (m: string) => Object.entries(SUBLAYER_METHOD_FAMILIES).find(([, ms]) => ms.includes(m))?.[0] ?? m;

/** Statistic of one sub-layer on the resampled prompts `sample` (indices into `idx`). */
function siteStat(
  method: string,
  v: Float64Array,
  base: SublayerEvidence["promptBaseline"],
  idx: number[],
): (sample: ArrayLike<number>) => number {
  return (sample) => {
    let sv = 0,
      cl = 0,
      co = 0;
    for (let j = 0; j < sample.length; j++) {
      const i = idx[sample[j]];
      sv += v[i];
      cl += base[i].clean;
      co += base[i].corrupted;
    }
    if (method === "denoising") return (sv - co) / (cl - co);
    if (method === "noising") return (cl - sv) / (cl - co);
    return sv / sample.length;
  };
}

/**
 * Per-layer effects, totals and the paired Σ|attn| − Σ|MLP| interval of one method on the prompts
 * `idx` (resampled together for every sub-layer, so the contrast's interval is paired).
 *
 * @example
 * sublayerContrast(res, "denoising", res.promptBaseline.filter((b) => b.n >= 2).map((b) => b.prompt));
 */
export function sublayerContrast(
  ev: SublayerEvidence,
  method: string,
  idx: number[],
  opts: SublayerRuleOptions = {},
): SublayerContrast {
  const excl = new Set(opts.excludeLayers ?? []);
  const P = ev.promptBaseline.length;
  const sites = new Map<string, { layer: number; sublayer: "attn" | "mlp"; v: Float64Array }>();
  for (const r of ev.perPrompt) {
    if (r.method !== method || excl.has(r.layer)) continue;
    const key = `${r.layer}|${r.sublayer}`;
    if (!sites.has(key)) sites.set(key, { layer: r.layer, sublayer: r.sublayer, v: new Float64Array(P).fill(NaN) });
    sites.get(key)!.v[r.prompt] = r.value;
  }
  const unit = PATCHING.has(method) ? "fraction" : "logit";
  const clean = meanOf(idx.map((i) => ev.promptBaseline[i].clean));
  const threshold =
    unit === "fraction" ? (opts.fractionThreshold ?? 0.1) : (opts.logitThreshold ?? 0.1 * Math.abs(clean));
  const boot = { samples: 1000, seed: 0, ...opts.bootstrap };
  const list = [...sites.values()].sort((a, b) => a.layer - b.layer);
  const stats = list.map((s) => siteStat(method, s.v, ev.promptBaseline, idx));
  const matters: Record<"attn" | "mlp", number[]> = { attn: [], mlp: [] };
  list.forEach((s, k) => {
    const ci = bootstrapIndices(idx.length, (x) => stats[k](x), boot);
    if (Math.abs(ci.estimate) >= threshold && (ci.lo > 0 || ci.hi < 0)) matters[s.sublayer].push(s.layer);
  });
  const total = (sample: ArrayLike<number>, which: "attn" | "mlp") =>
    list.reduce((a, s, k) => (s.sublayer === which ? a + Math.abs(stats[k](sample)) : a), 0);
  const d = bootstrapIndices(idx.length, (x) => total(x, "attn") - total(x, "mlp"), boot);
  const all = Int32Array.from(idx.keys());
  return {
    method,
    family: familyOf(method),
    unit,
    threshold,
    totalAttn: total(all, "attn"),
    totalMlp: total(all, "mlp"),
    diff: d.estimate,
    diffLo: d.lo,
    diffHi: d.hi,
    attnLayers: matters.attn,
    mlpLayers: matters.mlp,
    bothMatter: matters.attn.length > 0 && matters.mlp.length > 0,
  };
}

/** Verdict of finding 2 on one set of prompts, from its contrasts grouped by family. */
function familyVerdict(cs: SublayerContrast[]): {
  verdict: Verdict;
  families: { family: string; both: boolean; mha: boolean; mlp: boolean }[];
} {
  const fams = [...new Set(cs.map((c) => c.family))];
  const families = fams.map((family) => {
    const m = cs.filter((c) => c.family === family);
    return {
      family,
      both: m.every((c) => c.bothMatter),
      mha: m.every((c) => c.diffLo > 0),
      mlp: m.every((c) => c.diffHi < 0),
    };
  });
  const verdict: Verdict = families.every((f) => f.both && f.mha)
    ? "replicates"
    : families.some((f) => f.mha)
      ? "partly"
      : "does not replicate";
  return { verdict, families };
}

/** Contrasts of every method on the prompts of `ns`, and their family verdict. */
function contrastsFor(ev: SublayerEvidence, ns: number[], opts: SublayerRuleOptions) {
  const idx = ev.promptBaseline.filter((b) => ns.includes(b.n)).map((b) => b.prompt);
  if (idx.length === 0) return null;
  const methods = [...new Set(ev.perPrompt.map((r) => r.method))];
  const cs = methods.map((m) => sublayerContrast(ev, m, idx, opts));
  const clean = meanOf(idx.map((i) => ev.promptBaseline[i].clean));
  const fv = familyVerdict(cs);
  return { idx, cs, clean, ...fv, verdict: clean > 0 ? fv.verdict : ("does not replicate" as Verdict) };
}

const famText = (f: { family: string; both: boolean; mha: boolean; mlp: boolean }) =>
  `${f.family}: ${f.both ? "both types matter" : "not both matter"}, ${f.mha ? "MHA more" : f.mlp ? "MLP more" : "no clear order"}`;

/**
 * Finding 2, by method family and per n. For each method on the headline prompts (default n = 2–4):
 * per layer, a sub-layer matters when its effect's bootstrap interval excludes 0 and |effect| ≥ the
 * threshold (10 % of the mean clean LD, or 0.1 of the gap); Σ|attn| − Σ|MLP| gets a paired
 * bootstrap interval. A family (ablation, patching, attribution) says "both matter" when each of
 * its methods does, "MHA more" when each method's paired interval is above 0.
 * replicates: every family says both and MHA more; partly: some family says MHA more; does not
 * replicate: none does, no headline pair, or the mean clean LD ≤ 0. The same rule per n beside it.
 *
 * @example
 * const res = await sublayerEffects(model, pairs, { reference });
 * sublayerFinding(res).verdict;
 * sublayerFinding(res, { excludeLayers: [0] }).summary; // without layer 0
 */
export function sublayerFinding(ev: SublayerEvidence, opts: SublayerRuleOptions = {}): Finding {
  if (!ev || !Array.isArray(ev.perPrompt) || !Array.isArray(ev.promptBaseline) || ev.promptBaseline.length === 0)
    throw new InputError("sub-layer evidence: give perPrompt and promptBaseline (sublayerEffects' result)", {
      field: "promptBaseline",
    });
  const headline = opts.headline ?? [2, 3, 4];
  const ns = [...new Set(ev.promptBaseline.map((b) => b.n))].sort((a, b) => a - b);
  const head = contrastsFor(ev, headline, opts);
  const perN = ns.map((n) => ({ n, r: contrastsFor(ev, [n], opts)! }));
  const hl = `n = ${headline.filter((n) => ns.includes(n)).join(", ") || headline.join(", ")}`;
  const excl = opts.excludeLayers?.length
    ? ` without layer${opts.excludeLayers.length > 1 ? "s" : ""} ${opts.excludeLayers.join(", ")}`
    : "";
  const verdict: Verdict = head ? head.verdict : "does not replicate";
  const summary = !head
    ? `no clean/corrupted pair has n in ${headline.join(", ")}: nothing to judge.`
    : (head.clean > 0 ? "" : `the model does not do the task on these pairs (mean clean LD ${num(head.clean)} ≤ 0); `) +
      `on ${hl}${excl} (${head.idx.length} pairs): ${head.families.map(famText).join("; ")}. Per n: ${perN.map((x) => `n = ${x.n} ${x.r.verdict}`).join(", ")}.`;
  const numbers: Finding["numbers"] = {
    headline: headline.join(","),
    excludeLayers: (opts.excludeLayers ?? []).join(","),
  };
  for (const c of head?.cs ?? []) {
    numbers[`${c.method}_diff`] = c.diff;
    numbers[`${c.method}_diffLo`] = c.diffLo;
    numbers[`${c.method}_diffHi`] = c.diffHi;
  }
  for (const f of head?.families ?? []) numbers[`${f.family}_mhaMore`] = f.mha;
  for (const x of perN) numbers[`verdict_n${x.n}`] = x.r.verdict;
  return finish({
    id: "sub-layers",
    title: "attention and MLP sub-layers both matter, attention more",
    claim: "both multi-head attention (MHA) and feed-forward (FF) sub-layers matter for the task, MHA more so.",
    verdict,
    summary,
    rule:
      `on the headline pairs (${hl}), per method and layer, a sub-layer matters when its 95 % bootstrap interval excludes 0 and |effect| ≥ ${opts.logitThreshold !== undefined ? num(opts.logitThreshold) + " logits" : "10 % of the mean clean LD"} ` +
      `(logit methods) or ≥ ${num(opts.fractionThreshold ?? 0.1)} of the gap (patching)${excl}. Σ|attn| − Σ|MLP| gets a paired bootstrap interval (prompts resampled together). ` +
      `Families, not a vote of correlated methods: ${Object.entries(SUBLAYER_METHOD_FAMILIES)
        .map(([f, ms]) => `${f} (${ms.join(", ")})`)
        .join(
          "; ",
        )}; a family says "both matter" / "MHA more" when each of its methods does (MHA more: interval above 0). ` +
      `Every family both and MHA more → replicates; some family MHA more → partly; none, or mean clean LD ≤ 0 → does not replicate. The same rule per n.`,
    evidence: [
      ...(head?.cs ?? []).map(
        (c) =>
          `${c.family} · ${c.method}: Σ|attn| − Σ|MLP| = ${num(c.diff)} [${num(c.diffLo)}, ${num(c.diffHi)}] (attention ${num(c.totalAttn)}, MLP ${num(c.totalMlp)} ${c.unit === "fraction" ? "of the gap" : "logits"}); ` +
          `attention matters at ${c.attnLayers.map((l) => `L${l}`).join(", ") || "none"}, MLP at ${c.mlpLayers.map((l) => `L${l}`).join(", ") || "none"}`,
      ),
      ...perN.map(
        (x) =>
          `n = ${x.n}${headline.includes(x.n) ? "" : " (beside the headline)"}: ${x.r.verdict} — ${x.r.families.map(famText).join("; ")}`,
      ),
    ],
    numbers,
  });
}
