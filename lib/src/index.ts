export * from "./errors";
export * from "./tensor";
