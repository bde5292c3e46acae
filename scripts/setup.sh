#!/usr/bin/env bash
# Installs everything authwire's build, demo and tests need on a fresh machine of this kind.
# Idempotent: every step checks first and skips what is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# 1. The wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 1b. The dated nightly the release package is built with (scripts/versions.sh): about 15 s.
source scripts/versions.sh
if ! rustup run "$AUTHWIRE_NIGHTLY" rustc --version >/dev/null 2>&1 \
  || ! rustup component list --installed --toolchain "$AUTHWIRE_NIGHTLY" | grep -q '^rust-src' \
  || ! rustup target list --installed --toolchain "$AUTHWIRE_NIGHTLY" | grep -qx wasm32-unknown-unknown; then
  log "installing $AUTHWIRE_NIGHTLY (wasm target, rust-src) for the release build"
  rustup toolchain install "$AUTHWIRE_NIGHTLY" --profile minimal --target wasm32-unknown-unknown --component rust-src
fi

# 2. wasm-bindgen CLI, exactly the version Cargo.lock pins (the test runner comes with it).
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$WB_VERSION" ]; then echo "[setup] cannot read the wasm-bindgen version from Cargo.lock" >&2; exit 1; fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$"; then
  log "installing wasm-bindgen-cli $WB_VERSION (about 3 minutes)"
  # --locked first (reproducible); if a crate in its lock file was yanked since, resolve afresh.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --force \
    || cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# 3. wasm-pack (run with --mode no-install so it uses the wasm-bindgen above and never downloads).
if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack (about 5 minutes)"
  cargo install wasm-pack --locked || cargo install wasm-pack
fi

# 4. Debian packages: Chromium + its driver for browser tests.
#    (wasm-opt comes from npm's binaryen below: Debian's 108 cannot read wasm-bindgen's output.)
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 5. Firefox and WebKit for the browser tests in the other two engines (scripts/test.sh).
#    Firefox ESR with geckodriver from crates.io; WebKitGTK's WebKitWebDriver, which drives MiniBrowser,
#    with Xvfb (MiniBrowser has no headless mode). Measured 2026-11-25 with other builds on the 2 cores:
#    firefox-esr 21 s (apt-get update included), webkit2gtk-driver + xvfb + xauth 46 s, geckodriver
#    5 min 25 s to compile (about 1.5 min on an idle machine); 0.3 s when everything is present.
missing=()
command -v firefox-esr >/dev/null || missing+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || missing+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || missing+=(xvfb)
command -v xauth >/dev/null || missing+=(xauth)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$HOME/.cargo/bin/geckodriver" ]; then
  log "installing geckodriver (1.5 to 5 minutes)"
  cargo install geckodriver --locked || cargo install geckodriver
fi

# 6. npm packages (binaryen's wasm-opt; later the e2e tooling), from the committed lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "toolchain ready: $(rustup run "$AUTHWIRE_NIGHTLY" rustc --version), $(wasm-bindgen --version), $(wasm-pack --version), $(chromium --version 2>/dev/null | head -1)," \
  "$(firefox-esr --version 2>/dev/null | head -1), $("$HOME/.cargo/bin/geckodriver" --version 2>/dev/null | head -1)," \
  "WebKitGTK $(dpkg-query -W -f '${Version}' webkit2gtk-driver 2>/dev/null)"
