# Sourced by the scripts that need the dev server: `start_dev_server debug|release [flags...]`
# builds it, starts it on a free loopback port, exports AUTHWIRE_SERVER_URL and DEV_SERVER_LOG, and
# stops it (by its own PID) when the calling script exits. The binary is looked up under
# $CARGO_TARGET_DIR when it is set (else target/). `set_reuse_interval SECONDS` switches the running
# server's refresh-token reuse interval (10: GoTrue's hosted default; 0: strict rotation).
start_dev_server() {
  local profile="$1"
  shift
  if [ "$profile" = release ]; then cargo build --quiet --release -p authwire-devserver; else cargo build --quiet -p authwire-devserver; fi
  DEV_SERVER_DIR=$(mktemp -d)
  DEV_SERVER_LOG="$DEV_SERVER_DIR/server.log"
  "${CARGO_TARGET_DIR:-target}/$profile/authwire-devserver" --port 0 --port-file "$DEV_SERVER_DIR/port" --root . "$@" > "$DEV_SERVER_LOG" 2>&1 &
  DEV_SERVER_PID=$!
  trap stop_dev_server EXIT
  for _ in $(seq 1 100); do [ -s "$DEV_SERVER_DIR/port" ] && break; sleep 0.1; done
  if [ ! -s "$DEV_SERVER_DIR/port" ]; then echo "dev server did not start:"; cat "$DEV_SERVER_LOG"; exit 1; fi
  export AUTHWIRE_SERVER_URL="http://127.0.0.1:$(cat "$DEV_SERVER_DIR/port")"
  echo "dev server at $AUTHWIRE_SERVER_URL (pid $DEV_SERVER_PID)"
}

stop_dev_server() {
  if [ -n "${DEV_SERVER_PID:-}" ]; then
    kill "$DEV_SERVER_PID" 2>/dev/null || true
    wait "$DEV_SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "${DEV_SERVER_DIR:-}"
}

set_reuse_interval() {
  node -e '
    fetch(process.argv[1] + "/__test/config", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token_reuse_interval: Number(process.argv[2]) }) })
      .then((r) => { if (r.status !== 204) throw new Error("status " + r.status); })
      .catch((e) => { console.error("cannot set the reuse interval: " + e.message); process.exit(1); });
  ' "$AUTHWIRE_SERVER_URL" "$1"
  echo "dev server: refresh-token reuse interval $1 s"
}
