// analysis/findings/: the computed verdicts, one file per finding; finding.ts holds the shared
// Finding type (its text helpers stay internal).
export type { Verdict, Finding } from "./finding";
export * from "./accuracy";
export * from "./sensitivity";
export * from "./layerwise";
export * from "./sublayer";
export * from "./counting";
