// Shortens the names wasm-bindgen gives the wasm's imports and exports (`__wbg_fetch_3f2a…` with a
// 16-hex-digit hash, `authsession_accesstoken`, `./snippets/authwire-<hash>/inline0.js`) to one or
// two letters, in the wasm and in the glue that binds them: about 5 KB gzip of names nobody reads.
//   node scripts/shorten-names.mjs <dir>   (rewrites <dir>/authwire_bg.wasm, authwire.js and
//                                           authwire_bg.wasm.d.ts in place)
// Imports are renamed per module; the modules themselves become "a", "b", ...; exports are renamed
// where the glue reads them (`wasm.<name>`). It fails, writing nothing, if an old name is left in the
// glue in any form, or if the glue's layout is not the one it knows.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node scripts/shorten-names.mjs <dir>");
const wasmPath = join(dir, "authwire_bg.wasm");
const gluePath = join(dir, "authwire.js");
const dtsPath = join(dir, "authwire_bg.wasm.d.ts");
const bytes = readFileSync(wasmPath);

// Short names in order: a..z, A..Z, then two letters (never a JS keyword: no two-letter one is
// reachable before "do", "if", "in" are skipped).
const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const RESERVED = new Set(["do", "if", "in"]);
function* shortNames() {
  for (const c of LETTERS) yield c;
  for (const a of LETTERS) for (const b of LETTERS + "0123456789_$") if (!RESERVED.has(a + b)) yield a + b;
}

// A minimal reader/writer of the binary format: only the import (2) and export (7) sections are
// decoded; every other section is copied byte for byte.
function readU32(buf, pos) {
  let result = 0, shift = 0, byte;
  do {
    byte = buf[pos.at++];
    result |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return result >>> 0;
}
function u32(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}
const str = (s) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
function readStr(buf, pos) {
  const len = readU32(buf, pos);
  const s = buf.toString("utf8", pos.at, pos.at + len);
  pos.at += len;
  return s;
}
// Skips an import's description, returning its raw bytes.
function importDesc(buf, pos) {
  const start = pos.at;
  const kind = buf[pos.at++];
  const limits = () => {
    const flags = buf[pos.at++];
    readU32(buf, pos);
    if (flags & 1) readU32(buf, pos);
  };
  if (kind === 0x00) readU32(buf, pos); // function: type index
  else if (kind === 0x01) { pos.at++; limits(); } // table: reftype, limits
  else if (kind === 0x02) limits(); // memory
  else if (kind === 0x03) pos.at += 2; // global: valtype, mutability
  else if (kind === 0x04) { pos.at++; readU32(buf, pos); } // tag
  else throw new Error(`unknown import kind ${kind}`);
  return buf.subarray(start, pos.at);
}

// Walks the module's sections, handing each import (module, name) and export name to `rename` and
// writing what it answers; every other section is copied byte for byte.
function rewrite(buf, renameImport, renameExport) {
  if (buf.readUInt32LE(0) !== 0x6d736100) throw new Error(`${wasmPath} is not a wasm module`);
  const out = [buf.subarray(0, 8)];
  const pos = { at: 8 };
  while (pos.at < buf.length) {
    const id = buf[pos.at++];
    const size = readU32(buf, pos);
    const body = buf.subarray(pos.at, pos.at + size);
    pos.at += size;
    if (id !== 2 && id !== 7) {
      out.push(Buffer.from([id]), u32(size), body);
      continue;
    }
    const p = { at: 0 };
    const count = readU32(body, p);
    const parts = [u32(count)];
    for (let i = 0; i < count; i++) {
      if (id === 2) {
        const module = readStr(body, p);
        const name = readStr(body, p);
        const desc = importDesc(body, p);
        const [m, n] = renameImport(module, name);
        parts.push(str(m), str(n), desc);
      } else {
        const name = readStr(body, p);
        const kind = body[p.at++];
        const start = p.at;
        readU32(body, p);
        parts.push(str(renameExport(name)), Buffer.from([kind]), body.subarray(start, p.at));
      }
    }
    if (p.at !== body.length) throw new Error(`section ${id}: ${body.length - p.at} bytes left undecoded`);
    const content = Buffer.concat(parts);
    out.push(Buffer.from([id]), u32(content.length), content);
  }
  return Buffer.concat(out);
}

// The names. The main module's imports are the `name: function` entries of the glue's `import0`
// object; a snippet module's imports are that snippet's own exports (the glue passes
// `import * as importN from "./snippets/..."`), so they keep their names and only the module key,
// the property of the object `__wbg_get_imports` returns, is shortened.
const MAIN = "./authwire_bg.js";
// Exports an app may read from what `init()` resolves to keep their names.
const KEEP = new Set(["memory"]);
const moduleNames = new Map(); // old module → new
const importNames = new Map(); // `${module}\0${old}` → new (names are per module)
const exportNames = new Map(); // old → new
const modules = shortNames();
const mainNames = shortNames();
const exportsNext = shortNames();
const shortened = rewrite(
  bytes,
  (module, name) => {
    if (!moduleNames.has(module)) moduleNames.set(module, modules.next().value);
    const key = `${module}\0${name}`;
    if (!importNames.has(key)) importNames.set(key, module === MAIN ? mainNames.next().value : name);
    return [moduleNames.get(module), importNames.get(key)];
  },
  (name) => {
    if (!exportNames.has(name)) exportNames.set(name, KEEP.has(name) ? name : exportsNext.next().value);
    return exportNames.get(name);
  },
);

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
let glue = readFileSync(gluePath, "utf8");
// One pass each, so a short name can never be taken for an old one.
const mainImports = new Map([...importNames].filter(([k]) => k.startsWith(`${MAIN}\0`)).map(([k, v]) => [k.split("\0")[1], v]));
if (mainImports.size === 0) throw new Error(`no import from ${MAIN}: the glue's layout changed`);
const found = new Set();
glue = glue.replace(/(^|[^\w$])([\w$]+)(?=\s*:\s*function\b)/gm, (m, lead, name) => {
  if (!mainImports.has(name)) return m;
  found.add(name);
  return lead + mainImports.get(name);
});
const lost = [...mainImports.keys()].filter((n) => !found.has(n));
if (lost.length) throw new Error(`imports not found in the glue: ${lost.join(", ")}`);
const keyed = new Set();
glue = glue.replace(/"([^"\n]+)"(?=\s*:\s*import\d+\b)/g, (m, module) => {
  // A module the optimised wasm no longer imports keeps its key (nothing reads it).
  if (!moduleNames.has(module)) return m;
  keyed.add(module);
  return `"${moduleNames.get(module)}"`;
});
if (keyed.size !== moduleNames.size) throw new Error("a module the wasm imports is missing from the glue's import object");
glue = glue.replace(/\bwasm\.([\w$]+)/g, (m, name) => {
  if (!exportNames.has(name)) throw new Error(`the glue reads wasm.${name}, which the wasm does not export`);
  return `wasm.${exportNames.get(name)}`;
});

// No old name may be left where the glue could read it from the wasm in another form
// (`exports.x`, `wasm["x"]`); a JS function of the same name (wasm-bindgen names its closure
// wrappers after their exports) is the glue's own and stays.
const renamed = [
  ...[...mainImports].filter(([o, n]) => o !== n).map(([o]) => o),
  ...[...exportNames].filter(([o, n]) => o !== n).map(([o]) => o),
];
const left = renamed.filter((name) => new RegExp(`[.'"\`]${escape(name)}(?![\\w$])`).test(glue));
if (left.length) throw new Error(`old names left in the glue: ${left.slice(0, 5).join(", ")}`);

writeFileSync(wasmPath, shortened);
writeFileSync(gluePath, glue);
// The types of the exports: authwire_bg.wasm.d.ts (`export const name: ...`) and the `InitOutput`
// interface in authwire.d.ts (`readonly name: ...`, inside that interface only).
const renameTypes = (text, lead) =>
  text.replace(new RegExp(`(${lead})([\\w$]+)(?=\\s*:)`, "g"), (m, l, name) =>
    exportNames.has(name) ? l + exportNames.get(name) : m,
  );
if (existsSync(dtsPath)) writeFileSync(dtsPath, renameTypes(readFileSync(dtsPath, "utf8"), "export const "));
const mainDts = join(dir, "authwire.d.ts");
if (existsSync(mainDts)) {
  const text = readFileSync(mainDts, "utf8");
  const block = /export interface InitOutput \{[^}]*\}/.exec(text);
  if (!block) throw new Error(`${mainDts} has no InitOutput interface: the glue's layout changed`);
  writeFileSync(mainDts, text.replace(block[0], renameTypes(block[0], "readonly ")));
}
console.log(`shortened ${importNames.size} import and ${exportNames.size} export names: wasm ${bytes.length} → ${shortened.length} bytes`);
