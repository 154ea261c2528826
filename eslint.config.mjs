// ESLint flat config: typescript-eslint's recommended rules over the library, tests and scripts.
// Formatting is Prettier's job (npm run format); ESLint checks code, not layout.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "lib/dist/", ".venv/", ".venv-bench/", ".venv-bench-tl3/", "tmp/", "data/", "figures/", "notebooks/", "test/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      // `_`-prefixed names are deliberately unused (destructuring, compile-time checks).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
