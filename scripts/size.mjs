// What a user downloads, per build: the wasm, the glue, the snippets and the React hooks, the JS
// minified by esbuild, each gzipped at level 9 (the bench reports the same numbers).
//   node scripts/size.mjs           prints each build's size against size-budget.json
//   node scripts/size.mjs --check   fails if a build is more than 1 % over its budget (the test command)
//   node scripts/size.mjs --write   records today's sizes as the budget (commit the file)
// Sizes are reproducible to within a few bytes (a pinned toolchain and lock file, source paths
// remapped; a fresh clone's build read 1 byte more), so this is a budget, not a timed test.
import { transform } from "esbuild";
import { gzipSync } from "node:zlib";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const BUILDS = { full: "pkg", lite: "pkg/lite" };
export const BUDGET_FILE = "size-budget.json";
export const TOLERANCE = 0.01;

export const gz = (buf) => gzipSync(buf, { level: 9 }).length;
const minified = async (path) =>
  Buffer.from((await transform(readFileSync(path, "utf8"), { minify: true, loader: "js", format: "esm" })).code);

/** The gzipped parts of the build in `dir` (as built by scripts/build.sh) and their total. */
export async function measure(dir) {
  const snippets = [];
  const walk = (d) =>
    readdirSync(d)
      .sort()
      .forEach((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : f.endsWith(".js") && snippets.push(join(d, f))));
  if (existsSync(join(dir, "snippets"))) walk(join(dir, "snippets"));
  const parts = {
    wasm: gz(readFileSync(join(dir, "authwire_bg.wasm"))),
    glue: gz(await minified(join(dir, "authwire.js"))),
    snippets: snippets.length ? gz(Buffer.concat(await Promise.all(snippets.map(minified)))) : 0,
    react: gz(await minified(join(dir, "react.js"))),
  };
  return { ...parts, total: parts.wasm + parts.glue + parts.snippets + parts.react };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const mode = process.argv[2] ?? "--print";
  const sizes = {};
  for (const [name, dir] of Object.entries(BUILDS)) {
    if (!existsSync(join(dir, "authwire_bg.wasm"))) throw new Error(`${dir}/authwire_bg.wasm is missing: run scripts/build.sh first`);
    sizes[name] = await measure(dir);
  }
  if (mode === "--write") {
    writeFileSync(BUDGET_FILE, JSON.stringify(sizes, null, 2) + "\n");
    console.log(`wrote ${BUDGET_FILE}: ${JSON.stringify(sizes)}`);
    process.exit(0);
  }
  const budget = existsSync(BUDGET_FILE) ? JSON.parse(readFileSync(BUDGET_FILE, "utf8")) : {};
  let over = false;
  for (const [name, size] of Object.entries(sizes)) {
    const allowed = budget[name]?.total;
    const parts = `wasm ${size.wasm} + glue ${size.glue} + snippets ${size.snippets} + react ${size.react}`;
    if (allowed === undefined) {
      console.log(`size ${name}: ${size.total} bytes gzip (${parts}); no budget recorded`);
      over = true;
      continue;
    }
    const change = (size.total - allowed) / allowed;
    const verdict = change > TOLERANCE ? "OVER BUDGET" : change < -TOLERANCE ? "under budget (record it: node scripts/size.mjs --write)" : "within budget";
    console.log(`size ${name}: ${size.total} bytes gzip (${parts}), budget ${allowed}, ${(change * 100).toFixed(2)} %: ${verdict}`);
    if (change > TOLERANCE) over = true;
  }
  if (mode === "--check" && over) {
    console.error(`a build is more than ${TOLERANCE * 100} % over ${BUDGET_FILE} (or has no budget): make it smaller, or raise the budget in the same commit and say why`);
    process.exit(1);
  }
}
