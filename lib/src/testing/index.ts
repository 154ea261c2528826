// testing/: test support, exported as the `testing` namespace of the package
// (`import { testing } from "parenlens"; testing.referenceForward(...)`): the independent float64
// reference forward, seeded random checkpoints and the safetensors writer.
export * from "./reference-forward";
export * from "./random-checkpoint";
export * from "./safetensors-writer";
