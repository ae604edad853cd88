#!/usr/bin/env bash
# Builds the release binary as `cargo build --release` does, then links it
# again with the code that start-up and page requests run laid out together.
#
#   scripts/build-release.sh                     # target/release/porter
#   scripts/build-release.sh --example baseline  # more cargo arguments
#
# Why: the kernel maps a binary's code into memory 64 KiB around each page
# first run (fault-around). Start-up and a page request run about 3 MiB of
# functions spread over the whole 15 MiB of code, so 9 MiB of it became
# resident. Laid out together, they take about 3 MiB: the server starts
# in about 10 MiB instead of 15 (bench/RESULTS.md, "Memory").
#
# How: pass 1 builds. Then the binary runs under valgrind's callgrind, on a
# scratch SQLite database with the db and cookie engines (and on Redis and
# PostgreSQL where they answer,
# at REDIS_URL and BENCH_POSTGRES_URL as for bench/run.sh): start-up, a
# sign-in, the signed-in and anonymous pages. The names of the functions
# that ran go to `target/release/porter.symbol-order`, and pass 2 links
# again in that order (PORTER_SYMBOL_ORDER, read by build.rs). Names from
# another build do not match, hence both passes every time; a function the
# run missed only stays where it was.
#
# Needs valgrind and curl, and the lld linker (Rust's default on x86-64
# Linux). Without valgrind it stops after pass 1, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BINARY="$TARGET_DIR/release/porter"
ORDER="$BINARY.symbol-order"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT=18290
WORK="$(mktemp -d)"
PG_DATABASE=""
cleanup() {
    if [ -n "$PG_DATABASE" ]; then
        psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $PG_DATABASE WITH (FORCE)" \
            >/dev/null 2>&1 || true
    fi
    redis-cli -u "$REDIS_URL" --scan --pattern "porter:order:$$:*" 2>/dev/null \
        | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== pass 1: cargo build --release $*"
cargo build --release --quiet --bin porter "$@"
if ! command -v valgrind >/dev/null; then
    echo "warning: no valgrind; $BINARY is linked in the compiler's order" >&2
    exit 0
fi

# profile ENGINE DATABASE_URL: one run of the server under callgrind.
profile() {
    local engine="$1" url="http://127.0.0.1:$PORT" form token
    export DEBUG=false COOKIE_SECURE=false RUST_LOG=error SESSION_ENGINE="$engine" \
        DATABASE_URL="$2" REDIS_URL REDIS_KEY_PREFIX="porter:order:$$:" \
        BIND="127.0.0.1:$PORT" SITE_URL="$url"
    SECRET_KEY="$("$BINARY" secret generate)"
    export SECRET_KEY
    echo "order-passphrase-2026" | "$BINARY" createuser order --password-stdin >/dev/null
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$WORK/callgrind.$engine.out" "$BINARY" serve \
        >"$WORK/server.log" 2>&1 &
    local server=$!
    for _ in $(seq 1 600); do
        curl -fs -o /dev/null "$url/healthz" && break
        sleep 0.2
    done
    local jar="$WORK/jar"
    rm -f "$jar"
    form="$(curl -fs -c "$jar" "$url/login")"
    token="$(grep -o 'name="csrf_token" value="[0-9a-f]*"' <<<"$form" | head -1 | cut -d'"' -f4)"
    curl -fs -b "$jar" -c "$jar" -o /dev/null \
        --data "csrf_token=$token&username=order&password=order-passphrase-2026" "$url/login"
    for page in /profile /profile /healthz /security /password /sessions /email; do
        curl -s -b "$jar" -o /dev/null "$url$page"
    done
    for page in /login /profile /healthz; do
        curl -s -o /dev/null "$url$page"
    done
    kill -INT "$server"
    wait "$server" || true
    [ -s "$WORK/callgrind.$engine.out" ] || { cat "$WORK/server.log" >&2; exit 1; }
}

echo "== profiling start-up and pages under callgrind"
profile db "sqlite://$WORK/order.db"
profile cookie "sqlite://$WORK/order-cookie.db"
if redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
    profile redis "sqlite://$WORK/order-redis.db"
fi
if psql -q "$BENCH_POSTGRES_URL" -c "SELECT 1" >/dev/null 2>&1; then
    PG_DATABASE="porter_order_$$"
    psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $PG_DATABASE" >/dev/null
    profile cached_db "${BENCH_POSTGRES_URL%/*}/$PG_DATABASE"
fi

# Each function once, the SQLite runs' first: what one engine alone runs
# stays together, after what they share. callgrind marks recursion levels
# with 'N and names what it has no symbol for 0x….
for engine in db cookie redis cached_db; do
    if [ -f "$WORK/callgrind.$engine.out" ]; then cat "$WORK/callgrind.$engine.out"; fi
done | sed -n 's/^fn=\(([0-9]*) \)\{0,1\}//p' | sed "s/'[0-9]*$//" \
    | grep -v '^0x' | awk '!seen[$0]++' >"$ORDER"
echo "== pass 2: linking $(wc -l <"$ORDER") functions together"
PORTER_SYMBOL_ORDER="$(cd "$(dirname "$ORDER")" && pwd)/$(basename "$ORDER")" \
    cargo build --release --quiet --bin porter "$@"
echo "== built $BINARY"
