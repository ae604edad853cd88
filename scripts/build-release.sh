#!/usr/bin/env bash
# Builds the release binary as `cargo build --release` does, then builds it
# again with the code that start-up and page requests run laid out
# together, and its relocations packed.
#
#   scripts/build-release.sh                     # target/release/porter
#   scripts/build-release.sh --example baseline  # more cargo arguments
#
# Why: the kernel maps a binary's code into memory 64 KiB around each page
# first run (fault-around). Start-up and a page request run about 3 MiB of
# functions spread over the whole 15 MiB of code, so 9 MiB of it became
# resident. Laid out together, start-up's first, start-up keeps 2.5 to
# 3.5 MiB of it. With the packed relocations (DT_RELR: 15 KiB for the
# loader to read at start instead of 1.2 MiB), the server starts in 9.2 to
# 11 MiB instead of 17 (bench/RESULTS.md, "Memory, looked at again" and the
# sixth pass).
#
# How: pass 1 builds. Then the binary runs under valgrind's callgrind on a
# scratch SQLite database with the db and cookie engines (and the redis
# engine, and db and cached_db on PostgreSQL, where those answer at
# REDIS_URL and BENCH_POSTGRES_URL, as for bench/run.sh): once start-up
# alone, then start-up, a sign-in, the signed-in and anonymous pages. The
# names of the functions that ran go to `target/release/porter.symbol-order`,
# start-up's first, and pass 2 builds again (the link-time optimisation, a
# few minutes) with lld laying them out in that order (PORTER_SYMBOL_ORDER,
# read by build.rs). Names from another build do not match, hence both
# passes every time; a function the runs missed only stays where the
# compiler put it.
#
# Needs curl, readelf, valgrind (with its callgrind_control) and the lld
# linker (Rust's default on x86-64 Linux); without valgrind or lld it keeps
# pass 1's binary, with a warning.
# Relocations are packed only where this machine's glibc is 2.36 or later
# (Debian 12, Ubuntu 24.04): the binary then needs as much where it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BINARY="$TARGET_DIR/release/porter"
ORDER="$BINARY.symbol-order"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BENCH_POSTGRES_OPTIONS="${BENCH_POSTGRES_OPTIONS-sslmode=disable}"
PORT="${ORDER_PORT:-18290}"
WORK="$(mktemp -d)"
PG_DATABASES=()
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    for db in "${PG_DATABASES[@]}"; do
        psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
            >/dev/null 2>&1 || true
    done
    redis-cli -u "$REDIS_URL" --scan --pattern "porter:order:$$:*" 2>/dev/null \
        | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "build-release: $*" >&2
    [ -f "$WORK/server.log" ] && tail -20 "$WORK/server.log" >&2
    exit 1
}

# glibc 2.36 brought DT_RELR; `getconf` prints "glibc 2.36".
glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')"
if [ -n "$glibc" ] && [ "$(printf '%s\n2.36\n' "$glibc" | sort -V | head -1)" = 2.36 ]; then
    export PORTER_PACK_RELOCATIONS=1
else
    echo "warning: glibc ${glibc:-not found} (before 2.36): relocations are not packed" >&2
fi

echo "== pass 1: cargo build --release $*"
cargo build --release --quiet --bin porter "$@"
if ! command -v valgrind >/dev/null; then
    echo "warning: no valgrind; $BINARY is laid out in the compiler's order" >&2
    exit 0
fi
if ! readelf -p .comment "$BINARY" 2>/dev/null | grep -q 'Linker: LLD'; then
    echo "warning: $BINARY was not linked by lld; it stays in the compiler's order" >&2
    exit 0
fi

# profile ENGINE DATABASE_URL PHASE: one run of the server under callgrind,
# written to callgrind.PHASE.ENGINE.out (ENGINE@postgres: the engine, on
# PostgreSQL). PHASE `start-up` records until the server answers /healthz;
# `pages` goes on to sign in and load pages.
profile() {
    local engine="$1" phase="$3" url="http://127.0.0.1:$PORT" form token
    if curl -s -o /dev/null "$url/healthz"; then
        fail "port $PORT is taken (set ORDER_PORT)"
    fi
    # The settings bench/run.sh serves with: a setting read, or a warning
    # logged, runs code that should be laid out with the rest.
    export DEBUG=false COOKIE_SECURE=false RUST_LOG=warn HASHING_QUEUE=64 \
        SESSION_ENGINE="${engine%@*}" DATABASE_URL="$2" REDIS_URL \
        REDIS_KEY_PREFIX="porter:order:$$:" BIND="127.0.0.1:$PORT" SITE_URL="$url"
    SECRET_KEY="$("$BINARY" secret generate)"
    export SECRET_KEY
    # Before the first run, as bench/run.sh does: the server then starts on
    # a database whose migrations have run.
    if [ "$phase" = start-up ]; then
        echo "order-passphrase-2026" | "$BINARY" createuser order --password-stdin >/dev/null
    fi
    local out="$WORK/callgrind.$phase.$engine.out"
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$out" "$BINARY" serve >"$WORK/server.log" 2>&1 &
    SERVER=$!
    until curl -fs -o /dev/null "$url/healthz"; do
        kill -0 "$SERVER" 2>/dev/null || fail "the $engine server did not start"
        sleep 0.2
    done
    if [ "$phase" = start-up ]; then
        # Not the shutdown that follows: its code would sit among start-up's.
        timeout 30 callgrind_control --instr=off "$SERVER" >/dev/null 2>&1 \
            || fail "callgrind_control could not stop the $engine run's recording"
        stop_profile "$out"
        return
    fi
    local jar="$WORK/jar"
    rm -f "$jar"
    form="$(curl -fs -c "$jar" "$url/login")" || fail "GET /login failed"
    token="$(grep -o 'name="csrf_token" value="[0-9a-f]*"' <<<"$form" | head -1 | cut -d'"' -f4)"
    curl -fs -b "$jar" -c "$jar" -o /dev/null \
        --data "csrf_token=$token&username=order&password=order-passphrase-2026" "$url/login" \
        || fail "POST /login failed"
    grep -q sessionid "$jar" || fail "the sign-in on the $engine engine did not sign in"
    for page in /profile /profile /healthz /security /password /sessions /email; do
        curl -s -b "$jar" -o /dev/null "$url$page"
    done
    for page in /login /profile /healthz; do
        curl -s -o /dev/null "$url$page"
    done
    stop_profile "$out"
}

stop_profile() {
    kill -INT "$SERVER"
    wait "$SERVER" || true
    SERVER=""
    [ -s "$1" ] || fail "callgrind wrote nothing to $(basename "$1")"
}

echo "== profiling start-up and pages under callgrind"
ENGINES=(db cookie)
URLS=("sqlite://$WORK/order.db" "sqlite://$WORK/order-cookie.db")
REDIS_UP=""
if redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
    REDIS_UP=1
    ENGINES+=(redis)
    URLS+=("sqlite://$WORK/order-redis.db")
fi
if psql -q "$BENCH_POSTGRES_URL" -c "SELECT 1" >/dev/null 2>&1; then
    for engine in db cached_db; do
        # cached_db keeps its sessions in Redis too.
        [ "$engine" = cached_db ] && [ -z "$REDIS_UP" ] && continue
        db="porter_order_$$_$engine"
        psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
        PG_DATABASES+=("$db")
        ENGINES+=("$engine@postgres")
        URLS+=("${BENCH_POSTGRES_URL%/*}/$db${BENCH_POSTGRES_OPTIONS:+?$BENCH_POSTGRES_OPTIONS}")
    done
fi
for phase in start-up pages; do
    for i in "${!ENGINES[@]}"; do
        profile "${ENGINES[$i]}" "${URLS[$i]}" "$phase"
    done
done

# Each function once: first what start-up runs, then what pages run; in
# each, the SQLite runs' first, so that what one engine alone runs stays
# together, after what they share. Start-up touches its code once and is
# measured right after; pages keep theirs warm. callgrind marks recursion
# levels with 'N and names what it has no symbol for 0x….
for phase in start-up pages; do
    for engine in "${ENGINES[@]}"; do cat "$WORK/callgrind.$phase.$engine.out"; done
done | sed -n 's/^fn=\(([0-9]*) \)\{0,1\}//p' | sed "s/'[0-9]*$//" \
    | grep -v '^0x' | awk '!seen[$0]++' >"$ORDER"
echo "== pass 2: building again with $(wc -l <"$ORDER") functions laid out together"
PORTER_SYMBOL_ORDER="$(cd "$(dirname "$ORDER")" && pwd)/$(basename "$ORDER")" \
    cargo build --release --quiet --bin porter "$@"
echo "== built $BINARY (a later plain cargo build --release builds it again without the order)"
