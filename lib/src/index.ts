export * from "./errors";
export * from "./tensor";
export * from "./config";
export * from "./safetensors";
export * from "./safetensors-writer";
export * from "./weights";
export * from "./random-checkpoint";
export * from "./reference-forward";
