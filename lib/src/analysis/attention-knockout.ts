/**
 * Attention knockout: remove one head's attention from the last query position to chosen keys
 * (e.g. the `)` tokens) and renormalise the rest of that row, an edit of blocks.L.attn.hook_pattern.
 * Unlike zero or mean ablation the head keeps working; it only stops reading those keys.
 */
import type { Intervention } from "../hooks/interventions";
import type { Tensor } from "../core/tensor";

/**
 * A "function" intervention on `blocks.{layer}.attn.hook_pattern` that, for head `head` at each
 * prompt's last query position, sets the weights on the keys where `keyMask[b][key]` is true to 0
 * and divides the row by what is left (so it sums to 1 again). When every weight was on those
 * keys the row stays all zero (the head then writes nothing there). `keyMask[b]` is prompt b's own
 * token list (unpadded, BOS included); left and right padding are mapped.
 *
 * @example
 * const mask = prompts.map((p) => p.promptIds.map((id) => sets.close.has(id))); // the ")" keys
 * const logits = await model.runWithHooks(ids, [knockoutKeys(3, 5, mask)], { logitsAt: "last" });
 */
export function knockoutKeys(layer: number, head: number, keyMask: boolean[][]): Intervention {
  return {
    hook: `blocks.${layer}.attn.hook_pattern`,
    kind: "function",
    fn: (value: Tensor, ctx) => {
      const [B, H, Tq, Tk] = value.shape; // [batch, head, query_pos, key_pos]
      const lengths = ctx.batch?.lengths ?? Array.from({ length: B }, () => Tk);
      const left = (ctx.batch?.padding ?? "left") === "left";
      for (let b = 0; b < B; b++) {
        const len = lengths[b];
        const off = left ? Tk - len : 0; // padded index of the prompt's first token
        const row = ((b * H + head) * Tq + (off + len - 1)) * Tk;
        let kept = 0;
        for (let k = 0; k < len; k++) {
          if (keyMask[b][k]) value.data[row + off + k] = 0;
          else kept += value.data[row + off + k];
        }
        const f = kept > 0 ? 1 / kept : 0;
        for (let k = 0; k < Tk; k++) value.data[row + k] *= f;
      }
    },
  };
}
