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
