/**
 * The attention viewer in a real browser (headless Chromium via playwright-core): the embedded
 * model's pattern for a prompt, shown with showAttention's HTML; hovering a token colours exactly
 * its query row ("attends to") and its key column ("attended by"); the head selector switches
 * heads; the PNG fallback in the same bundle is a real image of the stated size. Saves a
 * screenshot under tmp/.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { chromium, type Browser, type Page } from "playwright-core";
import { attentionBundle, chromiumPath, closeFigureRenderer, HookedLlama, Tensor } from "../../lib/src";

const ROOT = path.resolve(__dirname, "../..");
const skip = fs.existsSync(process.env.PARENLENS_CHROMIUM || "/usr/bin/chromium") ? false : "no Chromium";
const prompt = "print(str(len(x";
let tokens: string[];
let pattern: Tensor; // [batch, head, query_pos, key_pos]
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  const model = await HookedLlama.fromPretrained(path.join(ROOT, "data/models/parenlens-code-6l"));
  const { cache } = await model.runWithCache(prompt, { names: ["blocks.2.attn.hook_pattern"] });
  tokens = model.toStrTokens(prompt);
  pattern = cache.get("pattern", 2);
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 900, height: 300 } });
});
after(async () => {
  await browser?.close();
  await closeFigureRenderer();
});

const weights = (row: string) =>
  page.$$eval(`.${row} .pl-tok`, (els) => els.map((e) => Number(e.getAttribute("data-weight"))));
const near = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) < 1e-4);

test("hovering a token shows its query row and key column; the head selector switches heads", { skip }, async () => {
  const heads = [1, 5];
  const { html, png, width, height } = await attentionBundle(tokens, pattern, { layer: 2, heads });
  assert.ok(!/src="(?!data:)|https?:\/\//.test(html), "self-contained: nothing loaded from elsewhere");
  await page.setContent(`<!DOCTYPE html><html><body>${html}</body></html>`);
  assert.equal(
    await page.locator(".pl-static").isVisible(),
    false,
    "the script swaps the static image for the live view",
  );
  const n = tokens.length;
  const q = 4; // the hovered token
  const A = (h: number, i: number, j: number) => pattern.get(0, h, i, j);
  await page.hover(`.pl-to .pl-tok[data-pos="${q}"]`);
  const row = Array.from({ length: n }, (_, j) => (j <= q ? A(1, q, j) : 0));
  const col = Array.from({ length: n }, (_, i) => (i >= q ? A(1, i, q) : 0));
  assert.ok(near(await weights("pl-to"), row), "attends to = pattern[head 1][query 4][:]");
  assert.ok(near(await weights("pl-from"), col), "attended by = pattern[head 1][:][key 4]");
  assert.equal(await page.locator(".pl-to .pl-hovered").getAttribute("data-pos"), String(q));
  assert.match((await page.locator(".pl-info").textContent()) ?? "", /^L2H1: token 4 /);

  await page.click(".pl-head >> nth=1"); // L2H5
  assert.equal(await page.locator('.pl-head[aria-pressed="true"]').textContent(), "L2H5");
  const row5 = Array.from({ length: n }, (_, j) => (j <= q ? A(5, q, j) : 0));
  assert.ok(near(await weights("pl-to"), row5), "after the switch: head 5's row");
  fs.mkdirSync(path.join(ROOT, "tmp"), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, "tmp", "attention-viewer.png") });

  // the static fallback: a PNG of the stated size (IHDR width/height)
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [width, height]);
});
