#!/usr/bin/env bash
# Builds the npm package into pkg/: two builds of the one crate, each an ES module that works in
# bundlers and in a plain <script type="module"> (wasm-bindgen's "web" target), merged with
# pkg-template/:
#   pkg/        authwire       (full: every source, cross-tab, auth.fetch, every handshake)
#   pkg/lite/   authwire/lite  (a Supabase session, the supabase source, ChatSocket's bearer path)
# Each build: the pinned nightly (scripts/versions.sh) with std rebuilt for immediate-abort panics,
# wasm-bindgen, binaryen's wasm-opt -Oz, then the import and export names shortened
# (scripts/shorten-names.mjs). `--release` (the default) is the only profile.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/versions.sh
if [ "${1:---release}" != "--release" ]; then echo "scripts/build.sh builds the release package only" >&2; exit 2; fi
# Where cargo puts the wasm (CARGO_TARGET_DIR, a cargo config's target-dir, else ./target).
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')

build() { # out_dir cargo-feature-flags...
  local out="$1"
  shift
  # Source paths that survive in the wasm (a few panic locations) are made relative, so the bytes
  # do not depend on where the toolchain and the registry live (the size budget is exact).
  local sep=$'\x1f' sysroot cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  sysroot=$(rustc "+$AUTHWIRE_NIGHTLY" --print sysroot)
  # No panic locations (-0.3 KB gzip). std's `optimize_for_size` would save 0.9 KB more but made
  # ChatSocket.send about 7 % slower (its smaller string and copy routines): not taken.
  # Warnings fail the build (it runs --quiet: an unreachable match arm once hid here).
  CARGO_ENCODED_RUSTFLAGS="-Dwarnings${sep}-Zunstable-options${sep}-Cpanic=immediate-abort${sep}-Zlocation-detail=none${sep}--remap-path-prefix=$sysroot/lib/rustlib/src/rust=${sep}--remap-path-prefix=$cargo_home/registry/src/=${sep}--remap-path-prefix=$PWD/=" \
    cargo "+$AUTHWIRE_NIGHTLY" build --quiet --lib --release \
    --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
  rm -rf "$out/snippets"
  wasm-bindgen --target web --out-dir "$out" --out-name authwire "$target_dir/wasm32-unknown-unknown/release/authwire.wasm"
  # Debian's binaryen 108 cannot parse the `table.fill` wasm-bindgen 0.2.130 emits: binaryen 132 from npm.
  # A function with one caller is inlined only when under 20 instructions (-Oz: at any size): more
  # bytes before gzip, 3 KB fewer after it (separate functions repeat each other's code, which gzip
  # finds; merged into their callers they do not). Measured 0 to 200: 15-25 is the floor for both builds.
  node_modules/.bin/wasm-opt "$out/authwire_bg.wasm" -o "$out/authwire_bg.wasm" -Oz --one-caller-inline-max-function-size 20 --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue
  node scripts/shorten-names.mjs "$out"
  # One module instead of the glue and its snippet modules (each an extra request and module
  # evaluation at start-up in a plain <script type="module"> page): esbuild inlines the snippets,
  # unminified (an app's bundler minifies), and keeps `new URL("authwire_bg.wasm", import.meta.url)`.
  node_modules/.bin/esbuild "$out/authwire.js" --bundle --format=esm --target=es2020 --log-level=error \
    --allow-overwrite --outfile="$out/authwire.js"
  rm -rf "$out/snippets"
  echo "built $out/: $(gzip -9 -c "$out/authwire_bg.wasm" | wc -c) bytes of gzipped wasm"
}
mkdir -p pkg/lite
build pkg
build pkg/lite --no-default-features
cp -r pkg-template/. pkg/
rm -f pkg/.gitignore
# The hooks work with either build: the same file beside each module.
cp pkg-template/react.js pkg-template/react.d.ts pkg/lite/

# The React demo consumes the package as npm would install it: pack, unpack into its node_modules,
# build with Vite into www/react (served at /react/).
tmp=$(mktemp -d)
tarball=$(cd pkg && npm pack --silent --pack-destination "$tmp" | tail -1)
rm -rf www/react-app/node_modules/authwire
mkdir -p www/react-app/node_modules/authwire
tar -xzf "$tmp/$tarball" -C www/react-app/node_modules/authwire --strip-components=1
rm -rf "$tmp"
node_modules/.bin/vite build --config www/react-app/vite.config.js
echo "built www/react/ (the React demo) from $tarball"
