/**
 * Duplicate keys in JSON text. `JSON.parse` keeps the last of two equal keys without a word, so a
 * shard index that names a tensor twice, or a config.json with two `num_hidden_layers`, would load
 * silently with one of the values. Checkpoint files are parsed, then scanned once with this.
 */

/** One object being scanned: its keys so far, where it is, whether a key comes next. */
interface Frame {
  keys: Set<string> | null; // null for arrays
  path: string;
  expectKey: boolean;
  lastKey: string;
}

/**
 * The first key that appears twice in one object of `text` (valid JSON, already parsed), with the
 * path of that object ("" for the top level, ".weight_map", ".model.vocab"), or null.
 *
 * @example
 * findDuplicateKey('{"weight_map": {"a": "1.safetensors", "a": "2.safetensors"}}');
 * // { key: "a", path: ".weight_map" }
 */
export function findDuplicateKey(text: string): { key: string; path: string } | null {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, path: top.path };
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      const path = top ? (top.keys ? `${top.path}.${top.lastKey}` : `${top.path}[]`) : "";
      stack.push({ keys: c === "{" ? new Set() : null, path, expectKey: c === "{", lastKey: "" });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === "," && top?.keys) {
      top.expectKey = true;
    }
  }
  return null;
}

/** `"key" (in .weight_map)` for messages. */
export function duplicateKeyText(d: { key: string; path: string }): string {
  return `key ${JSON.stringify(d.key)} appears twice${d.path ? ` in ${d.path.slice(1)}` : " at the top level"} (JSON keeps only the last)`;
}
