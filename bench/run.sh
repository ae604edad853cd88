#!/usr/bin/env bash
# Porter's benchmark: builds in release mode, serves each session engine on
# a fresh SQLite database (and `db` and `cached_db` again on a fresh
# PostgreSQL database, where cached_db earns its keep), and drives it with
# wrk. Writes bench/RESULTS.md.
#
#   bench/run.sh                  # every scenario, 10 s each
#   DURATION=5 bench/run.sh       # shorter runs
#   ENGINES="cached_db cached_db@postgres" RESULTS=/tmp/r.md bench/run.sh
#                                 # some engines only, results elsewhere
#
# Needs: cargo, curl, python3, Redis on 127.0.0.1:6379 (for the redis and
# cached_db engines), psql and PostgreSQL at BENCH_POSTGRES_URL (for the
# @postgres rows, skipped without them); installs wrk from the system's
# packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
PORT=18080
BASE_PORT=18090
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ENGINES="${ENGINES:-db cookie redis cached_db db@postgres cached_db@postgres}"
RESULTS="${RESULTS:-bench/RESULTS.md}"
PG_DATABASES=()
WORK="$(mktemp -d)"
ROWS="$WORK/rows.tsv"
SERVER_PID=""

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    redis-cli -u "$REDIS_URL" --scan --pattern "porter:bench:$$:*" 2>/dev/null \
        | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    for db in "${PG_DATABASES[@]}"; do
        psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk
fi

echo "== building (release)"
cargo build --release --quiet --bin porter --example baseline
PORTER=target/release/porter
BASELINE=target/release/examples/baseline

# A queue of password work longer than the storm's 32 connections: the storm
# measures hashing under load, not refusals (see HASHING_QUEUE in README).
export DEBUG=false COOKIE_SECURE=false RUST_LOG=warn HASHING_QUEUE=64
SECRET_KEY="$("$PORTER" secret generate)"
export SECRET_KEY
export BENCH_USER=bench BENCH_USERS=64 BENCH_PASSWORD=bench-passphrase-2026

# wrk's script for a scenario: an optional request script, then the report.
script_for() {
    local out="$WORK/script-$RANDOM.lua"
    [ -n "$1" ] && cat "$1" >"$out"
    cat bench/report.lua >>"$out"
    echo "$out"
}

# run ENGINE SCENARIO CONNECTIONS URL [LUA] [HEADER]: warm up, measure, record.
run() {
    local engine="$1" scenario="$2" conns="$3" url="$4" lua="${5:-}" header="${6:-X-Bench: 1}"
    local script
    script="$(script_for "$lua")"
    wrk -t1 -c"$conns" -d"${WARMUP}s" -s "$script" -H "$header" "$url" >/dev/null
    local line
    line="$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$script" -H "$header" "$url" | grep '^RESULT')"
    echo "   $engine $scenario c=$conns: $line"
    printf '%s\t%s\t%s\t%s\n' "$engine" "$scenario" "$conns" "${line#RESULT }" >>"$ROWS"
}

wait_for() {
    for _ in $(seq 1 100); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server at $1 did not start" >&2
    exit 1
}

# Signs in with curl; sets SID, CSRF_COOKIE and CSRF_TOKEN.
sign_in() {
    local jar="$WORK/jar"
    rm -f "$jar"
    local form
    form="$(curl -fs -c "$jar" "http://127.0.0.1:$PORT/login")"
    CSRF_TOKEN="$(grep -o 'name="csrf_token" value="[0-9a-f]*"' <<<"$form" | head -1 | cut -d'"' -f4)"
    CSRF_COOKIE="$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
    curl -fs -b "$jar" -c "$jar" -o /dev/null \
        --data "csrf_token=$CSRF_TOKEN&username=${BENCH_USER}0&password=$BENCH_PASSWORD" \
        "http://127.0.0.1:$PORT/login"
    SID="$(awk '$6 == "sessionid" { print $7 }' "$jar")"
    [ -n "$SID" ] || { echo "could not sign in" >&2; exit 1; }
}

PAGE_BYTES=""
for engine in $ENGINES; do
    # ENGINE@postgres: the same engine on a fresh PostgreSQL database.
    database_url="sqlite://$WORK/$engine.db"
    if [ "${engine#*@}" = postgres ]; then
        if ! psql -q "$BENCH_POSTGRES_URL" -c "SELECT 1" >/dev/null 2>&1; then
            echo "== engine: $engine skipped (no psql, or no PostgreSQL at BENCH_POSTGRES_URL)"
            continue
        fi
        db="porter_bench_$$_${engine%@*}"
        psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
        PG_DATABASES+=("$db")
        database_url="${BENCH_POSTGRES_URL%/*}/$db"
    fi
    echo "== engine: $engine"
    export SESSION_ENGINE="${engine%@*}" DATABASE_URL="$database_url" \
        REDIS_URL REDIS_KEY_PREFIX="porter:bench:$$:$engine:" BIND="127.0.0.1:$PORT" \
        SITE_URL="http://127.0.0.1:$PORT"
    for n in $(seq 0 $((BENCH_USERS - 1))); do
        echo "$BENCH_PASSWORD" | "$PORTER" createuser "$BENCH_USER$n" --password-stdin >/dev/null
    done
    "$PORTER" serve >"$WORK/server-$engine.log" 2>&1 &
    SERVER_PID=$!
    wait_for "http://127.0.0.1:$PORT/healthz"
    sign_in
    export BENCH_CSRF_COOKIE="$CSRF_COOKIE" BENCH_CSRF_TOKEN="$CSRF_TOKEN"
    if [ -z "$PAGE_BYTES" ]; then
        PAGE_BYTES="$(curl -fs -H "Cookie: sessionid=$SID" "http://127.0.0.1:$PORT/profile" | wc -c)"
    fi
    session="Cookie: sessionid=$SID"

    run "$engine" "GET /login (anonymous)" 32 "http://127.0.0.1:$PORT/login"
    run "$engine" "GET /profile" 32 "http://127.0.0.1:$PORT/profile" "" "$session"
    run "$engine" "GET /profile" 256 "http://127.0.0.1:$PORT/profile" "" "$session"
    run "$engine" "GET /healthz" 32 "http://127.0.0.1:$PORT/healthz"
    run "$engine" "POST /login" 32 "http://127.0.0.1:$PORT/login" bench/login.lua

    # GET /profile while 32 clients log in continuously.
    storm="$(script_for bench/login.lua)"
    wrk -t1 -c32 -d"$((DURATION + WARMUP + 2))s" -s "$storm" "http://127.0.0.1:$PORT/login" \
        >"$WORK/storm-$engine.txt" &
    storm_pid=$!
    sleep 1
    run "$engine" "GET /profile during login storm" 32 "http://127.0.0.1:$PORT/profile" "" "$session"
    wait "$storm_pid"
    storm_line="$(grep '^RESULT' "$WORK/storm-$engine.txt")"
    printf '%s\t%s\t%s\t%s\n' "$engine" "POST /login (the storm)" 32 "${storm_line#RESULT }" >>"$ROWS"

    rss_kb="$(awk '/VmHWM/ { print $2 }' "/proc/$SERVER_PID/status")"
    printf '%s\t%s\t%s\t%s\n' "$engine" "peak RSS" "-" "$rss_kb" >>"$ROWS"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
done

echo "== baseline: a bare actix-web handler, $PAGE_BYTES bytes"
"$BASELINE" "127.0.0.1:$BASE_PORT" "$PAGE_BYTES" &
SERVER_PID=$!
wait_for "http://127.0.0.1:$BASE_PORT/profile"
run baseline "GET /profile (static page)" 32 "http://127.0.0.1:$BASE_PORT/profile"
run baseline "GET /profile (static page)" 256 "http://127.0.0.1:$BASE_PORT/profile"
kill "$SERVER_PID"
SERVER_PID=""

python3 bench/report.py "$ROWS" "$DURATION" "$WARMUP" "$PAGE_BYTES" >"$RESULTS"
echo "== wrote $RESULTS"
sed -n '/## Targets/,$p' "$RESULTS"
