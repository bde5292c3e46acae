#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack's output (target "web": an ES module that works in
# bundlers and in a plain <script type="module">) merged with pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
profile="${1:---release}"
wasm-pack build "$profile" --target web --mode no-install --out-dir pkg --out-name authwire --no-pack
if [ "$profile" = "--release" ]; then
  node_modules/.bin/wasm-opt pkg/authwire_bg.wasm -o pkg/authwire_bg.wasm -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue
fi
cp -r pkg-template/. pkg/
rm -f pkg/.gitignore
echo "built pkg/: $(gzip -9 -c pkg/authwire_bg.wasm | wc -c) bytes of gzipped wasm"
