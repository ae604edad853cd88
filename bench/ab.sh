#!/usr/bin/env bash
# A/B the signed-in `GET /profile` scenario (32 connections, db engine)
# between two porter binaries, alternating runs so that a busy machine
# slows both alike. For a change too small for the full bench/run.sh.
#
#   bench/ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
#   DATABASE=postgres bench/ab.sh …     # on a fresh PostgreSQL database each run
#   COOKIES=browser bench/ab.sh …        # send the CSRF cookie too, as bench/run.sh
#
# Prints one RESULT line per run (req/s, p50 ms, p99 ms, errors, requests)
# with the server's CPU per request, and the median req/s of each binary.
# By default the pages carry only the session cookie, so each one also
# mints a CSRF secret; a signed-in browser (and bench/run.sh) sends the
# `csrftoken` cookie its login set.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/proc.sh
source bench/proc.sh

BEFORE="$1" AFTER="$2" ROUNDS="${3:-5}"
DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}"
DATABASE="${DATABASE:-sqlite}"
COOKIES="${COOKIES:-session}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT=18180
WORK="$(mktemp -d)"
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
export DEBUG=false COOKIE_SECURE=false RUST_LOG=warn SESSION_ENGINE=db BIND="127.0.0.1:$PORT" \
    SITE_URL="http://127.0.0.1:$PORT"

# run BINARY LABEL: one measured run on a fresh database; appends to results.
run() {
    local bin="$1" label="$2" db=""
    SECRET_KEY="$("$bin" secret generate)"
    export SECRET_KEY
    if [ "$DATABASE" = postgres ]; then
        db="porter_ab_$RANDOM$RANDOM"
        psql -q "$PG_ADMIN" -c "CREATE DATABASE $db"
        export DATABASE_URL="${PG_ADMIN%/*}/$db"
    else
        rm -f "$WORK"/ab.db*
        export DATABASE_URL="sqlite://$WORK/ab.db"
    fi
    echo "bench-passphrase-2026" | "$bin" createuser bench --password-stdin >/dev/null
    "$bin" serve >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    local jar="$WORK/jar" form token sid line
    rm -f "$jar"
    form="$(curl -fs -c "$jar" "http://127.0.0.1:$PORT/login")"
    token="$(grep -o 'name="csrf_token" value="[0-9a-f]*"' <<<"$form" | head -1 | cut -d'"' -f4)"
    curl -fs -b "$jar" -c "$jar" -o /dev/null \
        --data "csrf_token=$token&username=bench&password=bench-passphrase-2026" \
        "http://127.0.0.1:$PORT/login"
    sid="$(awk '$6 == "sessionid" { print $7 }' "$jar")"
    local url="http://127.0.0.1:$PORT/profile" header="Cookie: sessionid=$sid"
    if [ "$COOKIES" = browser ]; then
        header="$header; csrftoken=$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
    fi
    wrk -t1 -c32 -d"${WARMUP}s" -s bench/report.lua -H "$header" "$url" >/dev/null
    local ticks_before ticks_after
    ticks_before="$(cpu_ticks)"
    line="$(wrk -t1 -c32 -d"${DURATION}s" --latency -s bench/report.lua -H "$header" "$url" | grep '^RESULT')"
    ticks_after="$(cpu_ticks)"
    # The server's CPU time over the requests wrk completed.
    line="$line $(awk -v t="$((ticks_after - ticks_before))" -v hz="$(getconf CLK_TCK)" \
        -v n="$(awk '{ print $6 }' <<<"$line")" 'BEGIN { printf "cpu_ms_per_req=%.4f", t * 1000 / hz / n }')"
    echo "$label $line" | tee -a "$WORK/results"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    if [ -n "$db" ]; then
        psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    fi
}

for _ in $(seq 1 "$ROUNDS"); do
    run "$BEFORE" before
    run "$AFTER" after
done

median() { grep "^$1 " "$WORK/results" | awk '{ print $3 }' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
before="$(median before)" after="$(median after)"
echo "median req/s: before $before, after $after, ratio $(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a / b }')"
