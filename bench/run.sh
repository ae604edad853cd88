#!/usr/bin/env bash
# Porter's benchmark: builds in release mode, serves each session engine on
# a fresh SQLite database (and `db` and `cached_db` again on a fresh
# PostgreSQL database, where cached_db earns its keep), and drives it with
# wrk. Beside req/s and latency it measures the server's CPU time per
# request and its memory (after start-up, under page load at 32 and at 256
# connections, during a login storm and after it). Writes the generated part of bench/RESULTS.md.
#
#   bench/run.sh                  # build, then every scenario, 10 s each
#   DURATION=5 bench/run.sh       # shorter runs
#   ENGINES="cached_db cached_db@postgres" RESULTS=/tmp/r.md bench/run.sh
#                                 # some engines only, results elsewhere
#   BIN_DIR=/tmp/bench-bin bench/run.sh
#                                 # no build: BIN_DIR/porter and
#                                 # BIN_DIR/examples/baseline as they are
#                                 # (build them with scripts/build-release.sh
#                                 # --example baseline to measure what a
#                                 # production build holds)
#
# Settings (environment):
#   DURATION    seconds measured per scenario (10)
#   WARMUP      seconds of warm-up before each (2)
#   NOISE_RUNS  how many times the baseline's and every engine's
#               `GET /profile` at 32 connections run: the run-to-run
#               noise, and the calm side of the storm's ratio, a median as
#               the storm's side is; the table shows their median (3)
#   STORM_RUNS  how many times each engine's login storm runs, with
#               GET /profile measured during it; the table shows the
#               median of each column (3)
#   ENGINES     engines to serve, ENGINE@postgres for PostgreSQL
#               ("db cookie redis cached_db db@postgres cached_db@postgres";
#               empty for none)
#   RESULTS     the results file (bench/RESULTS.md). Only the part between
#               the two `bench/run.sh: generated` marker lines is replaced
#   REFERENCE_DIR  a folder whose `porter` is the code to compare with, for
#               the regression check ("no scenario slower than before"):
#               each of REFERENCE_ENGINES is served by it and by this build
#               in turn, REFERENCE_ROUNDS times each, and the rounds' spread
#               is the noise a slower row must exceed. Without it the check
#               is not run. The results before round two of the
#               performance work came from commit ac998bc:
#                 git worktree add /tmp/porter-before ac998bc
#                 (cd /tmp/porter-before && cargo build --release --bin porter)
#                 REFERENCE_DIR=/tmp/porter-before/target/release bench/run.sh
#   REFERENCE_ENGINES  the engines of the regression check ("db cookie
#               redis", the engines of those results)
#   REFERENCE_ROUNDS   how many times each binary serves each of them (3)
#   REFERENCE_NAME     what the results call the reference binary (its path)
#   LOGIN_TIMEOUT  how long wrk waits for a login before counting it as
#               an error (5s; wrk's own default, 2s, is shorter than a
#               login's wait in a storm of 32 on 2 cores: 32 hashes queue
#               for one hashing thread). The logins' p99 shows the wait.
#   BIN_DIR     use the release binaries in this folder instead of building
#   REDIS_URL   (redis://127.0.0.1:6379)
#   BENCH_POSTGRES_URL  an administrative connection to PostgreSQL, where
#               each @postgres engine gets a fresh database
#               (postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_POSTGRES_OPTIONS  libpq's settings for Porter's connections to
#               those databases (sslmode=disable: the server is on this
#               machine, where TLS protects nothing and costs each process
#               2.8 MiB; see DATABASE_URL in the README)
#   BENCH_AUTOGROUP  the kernel's autogroup scheduling during the run:
#               "off" (the default) turns it off for the run, where it is
#               on and the script may (as root, with /proc/sys writable;
#               it is a setting of the whole machine, or of the host in a
#               privileged container), and back on at the end; "keep"
#               leaves it as it is. With it on, each PostgreSQL backend is
#               a scheduling group of its own, and the hashing threads'
#               lower priority does not count against them (see
#               "PostgreSQL on the same machine" in the README). Processes
#               started before the run (Redis, PostgreSQL's own) keep the
#               groups they have; the servers and the backends they
#               connect to are started during it
#
# Needs: cargo and valgrind (unless BIN_DIR; see scripts/build-release.sh),
# curl, python3 (also to clear the login throttle between runs), Linux's
# /proc (CPU and memory figures; resetting the memory peak writes
# /proc/PID/clear_refs, so run it as the servers' owner), Redis at REDIS_URL (for the redis and cached_db engines), psql and
# PostgreSQL at BENCH_POSTGRES_URL (for the @postgres rows, skipped without
# them); installs wrk from the system's packages when it is missing.
set -euo pipefail
# BIN_DIR and REFERENCE_DIR may be relative to where the script was
# started from.
if [ -n "${BIN_DIR:-}" ]; then
    BIN_DIR="$(cd "$BIN_DIR" && pwd)"
fi
REFERENCE=""
if [ -n "${REFERENCE_DIR:-}" ]; then
    REFERENCE="$(cd "$REFERENCE_DIR" && pwd)/porter"
    [ -x "$REFERENCE" ] || { echo "REFERENCE_DIR: $REFERENCE is missing or not executable" >&2; exit 1; }
fi
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
NOISE_RUNS="${NOISE_RUNS:-3}"
STORM_RUNS="${STORM_RUNS:-3}"
LOGIN_TIMEOUT="${LOGIN_TIMEOUT:-5s}"
PORT=18080
BASE_PORT=18090
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
BENCH_POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BENCH_POSTGRES_OPTIONS="${BENCH_POSTGRES_OPTIONS:-sslmode=disable}"
BENCH_AUTOGROUP="${BENCH_AUTOGROUP:-off}"
ENGINES="${ENGINES-db cookie redis cached_db db@postgres cached_db@postgres}"
REFERENCE_ENGINES="${REFERENCE_ENGINES-db cookie redis}"
REFERENCE_ROUNDS="${REFERENCE_ROUNDS:-3}"
RESULTS="${RESULTS:-bench/RESULTS.md}"
CLK_TCK="$(getconf CLK_TCK)"
PG_DATABASES=()
WORK="$(mktemp -d)"
ROWS="$WORK/rows.tsv"
SERVER_PID=""
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
AUTOGROUP_TURNED_OFF=""

cleanup() {
    if [ -n "$AUTOGROUP_TURNED_OFF" ]; then
        echo 1 >"$AUTOGROUP" || true
    fi
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    redis-cli -u "$REDIS_URL" --scan --pattern "porter:bench:$$:*" 2>/dev/null \
        | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    for db in "${PG_DATABASES[@]}"; do
        psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The hashing threads' lower priority must count against the database's
# processes too: with autogroup on, each PostgreSQL backend (it starts a
# session of its own) is a scheduling group, and a nice value ranks threads
# only within their group.
case "$BENCH_AUTOGROUP" in
    off | keep) ;;
    *) echo "BENCH_AUTOGROUP: off or keep, not '$BENCH_AUTOGROUP'" >&2; exit 2 ;;
esac
if [ "$BENCH_AUTOGROUP" = off ] && [ "$(cat "$AUTOGROUP" 2>/dev/null)" = 1 ]; then
    # Set first: the cleanup writes back the 1 read above, whatever happens.
    AUTOGROUP_TURNED_OFF=1
    if (echo 0 >"$AUTOGROUP") 2>/dev/null; then
        echo "== the kernel's autogroup scheduling is off for this run (BENCH_AUTOGROUP=keep leaves it on)"
    else
        AUTOGROUP_TURNED_OFF=""
        echo "bench: the kernel's autogroup scheduling is on and could not be turned off" \
            "(not root, or /proc/sys is read-only here); the @postgres storm rows will show it" \
            "(README, PostgreSQL on the same machine)" >&2
    fi
fi

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk
fi

if [ -n "${BIN_DIR:-}" ]; then
    PORTER="$BIN_DIR/porter"
    BASELINE="$BIN_DIR/examples/baseline"
    for bin in "$PORTER" "$BASELINE"; do
        [ -x "$bin" ] || { echo "BIN_DIR: $bin is missing or not executable" >&2; exit 1; }
    done
    echo "== using the binaries in $BIN_DIR"
else
    # What production runs: a binary laid out by callgrind's run, which
    # needs valgrind (a plain build would measure more memory).
    command -v valgrind >/dev/null || {
        echo "bench: valgrind is needed to build as scripts/build-release.sh does (or set BIN_DIR)" >&2
        exit 1
    }
    echo "== building (release, as scripts/build-release.sh builds for production)"
    scripts/build-release.sh --example baseline
    PORTER="${CARGO_TARGET_DIR:-target}/release/porter"
    BASELINE="${CARGO_TARGET_DIR:-target}/release/examples/baseline"
fi

# A queue of password work longer than the storm's 32 connections: the storm
# measures hashing under load, not refusals (see HASHING_QUEUE in README).
export DEBUG=false COOKIE_SECURE=false RUST_LOG=warn HASHING_QUEUE=64
SECRET_KEY="$("$PORTER" secret generate)"
export SECRET_KEY
export BENCH_USER=bench BENCH_USERS=64 BENCH_PASSWORD=bench-passphrase-2026

# wrk's script for a scenario: optional request scripts, then the report.
script_for() {
    local out="$WORK/script-$RANDOM.lua"
    : >"$out"
    for part in "$@"; do
        [ -n "$part" ] && cat "$part" >>"$out"
    done
    cat bench/report.lua >>"$out"
    echo "$out"
}

# cpu_ticks: the server's CPU time so far.
# shellcheck source=bench/proc.sh
source bench/proc.sh

# memory ENGINE WHAT FIELD: records the server's VmRSS or VmHWM, in kB.
memory() {
    local kb
    kb="$(awk -v field="$3:" '$1 == field { print $2 }' "/proc/$SERVER_PID/status")"
    echo "   $1 memory, $2: $(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }') MiB ($3)"
    printf 'mem\t%s\t%s\t%s\n' "$1" "$2" "$kb" >>"$ROWS"
}

# Forgets the server's peak RSS (VmHWM), so that the next reading covers only
# what follows.
reset_peak() {
    echo 5 >"/proc/$SERVER_PID/clear_refs"
}

# wrk stops with up to 32 logins in flight, and the login throttle keeps
# the reservation of an attempt whose client went away (as a failure, by
# design): every run would leave 32 attempts against the one client address
# (limit 50) and the next would meet 429s. The bench measures password
# hashing, not the throttle, so login runs start with no attempts on record.
forget_login_attempts() {
    case "$DATABASE_URL" in
        postgres*) psql -q "$DATABASE_URL" -c "DELETE FROM login_attempts" >/dev/null ;;
        *) python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=5)
db.execute("DELETE FROM login_attempts")
db.commit()' "${DATABASE_URL#sqlite://}" ;;
    esac
}

# measure CONNS URL SCRIPT HEADER: warm up, then one measured run; sets
# RESULT (req/s, p50 ms, p99 ms, errors, requests) and TICKS, the server's
# CPU ticks over the measured run. With LOGINS=1, forgets the login attempts
# before each wrk.
measure() {
    local conns="$1" url="$2" script="$3" header="$4" before line timeout=()
    [ "${LOGINS:-0}" = 1 ] && timeout=(--timeout "$LOGIN_TIMEOUT")
    [ "${LOGINS:-0}" = 1 ] && forget_login_attempts
    wrk -t1 -c"$conns" -d"${WARMUP}s" "${timeout[@]}" -s "$script" -H "$header" "$url" >/dev/null
    [ "${LOGINS:-0}" = 1 ] && forget_login_attempts
    before="$(cpu_ticks)"
    wrk -t1 -c"$conns" -d"${DURATION}s" "${timeout[@]}" --latency -s "$script" -H "$header" "$url" >"$WORK/wrk.txt"
    TICKS=$(($(cpu_ticks) - before))
    show_errors "$WORK/wrk.txt"
    line="$(grep '^RESULT' "$WORK/wrk.txt")"
    RESULT="${line#RESULT }"
}

# show_errors WRK_OUTPUT: wrk's own account of the errors (socket errors,
# timeouts included, and statuses other than 2xx and 3xx), when it has any.
show_errors() {
    grep -E 'Socket errors|Non-2xx' "$1" | sed 's/^ */   wrk: /' || true
}

# record ENGINE SCENARIO CONNS RESULT TICKS CPU_REQUESTS SHARED: one row of
# the table. The CPU per request is TICKS over CPU_REQUESTS; SHARED is 1
# when those ticks served two loads at once.
record() {
    local engine="$1" scenario="$2" conns="$3" result="$4" ticks="$5" cpu_requests="$6" shared="$7"
    local cpu_ms per_request
    cpu_ms="$(awk -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t * 1000 / hz }')"
    per_request="$(awk -v ms="$cpu_ms" -v n="$cpu_requests" 'BEGIN { printf "%.4f", (n > 0 ? ms / n : 0) }')"
    echo "   $engine $scenario c=$conns: RESULT $result, CPU $cpu_ms ms, $per_request ms/req"
    # shellcheck disable=SC2086 # the result's fields become columns
    printf 'load\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$scenario" "$conns" \
        $result "$cpu_ms" "$cpu_requests" "$shared" >>"$ROWS"
}

# run ENGINE SCENARIO CONNECTIONS URL [LUA] [HEADER]: warm up, measure, record.
run() {
    local engine="$1" scenario="$2" conns="$3" url="$4" lua="${5:-}" header="${6:-X-Bench: 1}"
    measure "$conns" "$url" "$(script_for "$lua")" "$header"
    record "$engine" "$scenario" "$conns" "$RESULT" "$TICKS" "$(awk '{ print $5 }' <<<"$RESULT")" 0
}

wait_for() {
    for _ in $(seq 1 100); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server at $1 did not start" >&2
    exit 1
}

# Signs in with curl; sets SID, CSRF_COOKIE and CSRF_TOKEN (the login
# form's), and BROWSER_COOKIES: what the signed-in browser sends with each
# page (its session, and the CSRF cookie that login rotated).
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
    BROWSER_COOKIES="sessionid=$SID; csrftoken=$(awk '$6 == "csrftoken" { print $7 }' "$jar")"
}

# Appended to the storm's wrk script: one byte in BENCH_TALLY per response,
# so that the logins completed within another scenario's window can be
# counted (the storm runs at tens of requests a second: the writes cost
# nothing that shows).
cat >"$WORK/tally.lua" <<'EOF'
local tally = io.open(os.getenv("BENCH_TALLY"), "a")
response = function(status, headers, body)
  tally:write(".")
  tally:flush()
end
EOF

# missing_database ENGINE: true, and says so, when ENGINE is an @postgres
# engine and there is no PostgreSQL to serve it from.
missing_database() {
    if [ "${1#*@}" = postgres ] && ! psql -q "$BENCH_POSTGRES_URL" -c "SELECT 1" >/dev/null 2>&1; then
        echo "== $1 skipped (no psql, or no PostgreSQL at BENCH_POSTGRES_URL)"
        return 0
    fi
    return 1
}

# bench ENGINE LABEL BINARY PROFILE_RUNS STORM_RUNS: serves ENGINE with
# BINARY on a fresh database, runs every scenario (the calm `GET /profile`
# PROFILE_RUNS times, the storm STORM_RUNS times) and records them under
# LABEL.
PAGE_BYTES=""
PASSES=0
bench() {
    local engine="$1" label="$2" porter="$3" profile_runs="$4" storm_runs="$5"
    local database_url db
    PASSES=$((PASSES + 1))
    # ENGINE@postgres: the same engine on a fresh PostgreSQL database.
    database_url="sqlite://$WORK/pass-$PASSES.db"
    if [ "${engine#*@}" = postgres ]; then
        db="porter_bench_$$_$PASSES"
        psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $db" >/dev/null
        PG_DATABASES+=("$db")
        database_url="${BENCH_POSTGRES_URL%/*}/$db${BENCH_POSTGRES_OPTIONS:+?$BENCH_POSTGRES_OPTIONS}"
    fi
    echo "== $label"
    export SESSION_ENGINE="${engine%@*}" DATABASE_URL="$database_url" \
        REDIS_URL REDIS_KEY_PREFIX="porter:bench:$$:$PASSES:" BIND="127.0.0.1:$PORT" \
        SITE_URL="http://127.0.0.1:$PORT"
    for n in $(seq 0 $((BENCH_USERS - 1))); do
        echo "$BENCH_PASSWORD" | "$porter" createuser "$BENCH_USER$n" --password-stdin >/dev/null
    done
    "$porter" serve >"$WORK/server-$PASSES.log" 2>&1 &
    SERVER_PID=$!
    wait_for "http://127.0.0.1:$PORT/healthz"
    memory "$label" "after start-up" VmRSS
    sign_in
    export BENCH_CSRF_COOKIE="$CSRF_COOKIE" BENCH_CSRF_TOKEN="$CSRF_TOKEN"
    # The page the baseline serves is as large as this binary's own.
    if [ -z "$PAGE_BYTES" ] && [ "$porter" = "$PORTER" ]; then
        PAGE_BYTES="$(curl -fs -H "Cookie: sessionid=$SID" "http://127.0.0.1:$PORT/profile" | wc -c)"
    fi
    # As a browser: without its CSRF cookie, every page would mint a new
    # token and set it (a browser keeps the first).
    local session="Cookie: $BROWSER_COOKIES"

    # Page load: the GET scenarios, at 32 connections, then signed-in pages
    # at 256 (the peak then covers both). The peak is reset after the
    # sign-in, whose password hash would otherwise set it.
    reset_peak
    run "$label" "GET /login (anonymous)" 32 "http://127.0.0.1:$PORT/login"
    for _ in $(seq 1 "$profile_runs"); do
        run "$label" "GET /profile" 32 "http://127.0.0.1:$PORT/profile" "" "$session"
    done
    run "$label" "GET /healthz" 32 "http://127.0.0.1:$PORT/healthz"
    memory "$label" "page load, 32 connections" VmHWM
    run "$label" "GET /profile" 256 "http://127.0.0.1:$PORT/profile" "" "$session"
    memory "$label" "page load, 256 connections" VmHWM

    # Logins: POST /login alone, then GET /profile while 32 clients log in
    # continuously.
    reset_peak
    LOGINS=1 run "$label" "POST /login" 32 "http://127.0.0.1:$PORT/login" bench/login.lua
    # The storm runs several times: its p99 swings more from one window to
    # the next than any other figure, and the table shows the median (every
    # window's p99 is in the noise table).
    local profile_script tally storm_pid logins_before logins window_requests storm_line
    profile_script="$(script_for "")"
    tally="$WORK/storm-$PASSES.tally"
    for _ in $(seq 1 "$storm_runs"); do
        : >"$tally"
        forget_login_attempts
        BENCH_TALLY="$tally" wrk -t1 -c32 -d"$((DURATION + WARMUP + 2))s" --timeout "$LOGIN_TIMEOUT" \
            -s "$(script_for bench/login.lua "$WORK/tally.lua")" "http://127.0.0.1:$PORT/login" \
            >"$WORK/storm.txt" &
        storm_pid=$!
        sleep 1
        wrk -t1 -c32 -d"${WARMUP}s" -s "$profile_script" -H "$session" "http://127.0.0.1:$PORT/profile" >/dev/null
        logins_before="$(stat -c %s "$tally")"
        measure 32 "http://127.0.0.1:$PORT/profile" "$profile_script" "$session"
        logins=$(($(stat -c %s "$tally") - logins_before))
        # Both loads share the window's CPU: per request of either load.
        window_requests=$(($(awk '{ print $5 }' <<<"$RESULT") + logins))
        record "$label" "GET /profile during login storm" 32 "$RESULT" "$TICKS" "$window_requests" 1
        wait "$storm_pid"
        show_errors "$WORK/storm.txt"
        storm_line="$(grep '^RESULT' "$WORK/storm.txt")"
        record "$label" "POST /login (the storm)" 32 "${storm_line#RESULT }" "$TICKS" "$window_requests" 1
    done
    memory "$label" "login storm peak" VmHWM
    sleep 3
    memory "$label" "3 s after the storm" VmRSS

    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

for engine in $ENGINES; do
    missing_database "$engine" || bench "$engine" "$engine" "$PORTER" "$NOISE_RUNS" "$STORM_RUNS"
done

# The regression check: the same scenarios served by the reference binary
# and by this one, taking turns (who goes first alternates from round to
# round), so that a busy machine slows both alike. Each round is a fresh
# server and database, and the rounds' spread is the run-to-run noise.
if [ -n "$REFERENCE" ]; then
    for round in $(seq 1 "$REFERENCE_ROUNDS"); do
        for engine in $REFERENCE_ENGINES; do
            missing_database "$engine" && continue
            if [ $((round % 2)) = 1 ]; then
                bench "$engine" "before:$engine" "$REFERENCE" 1 1
                bench "$engine" "now:$engine" "$PORTER" 1 1
            else
                bench "$engine" "now:$engine" "$PORTER" 1 1
                bench "$engine" "before:$engine" "$REFERENCE" 1 1
            fi
        done
    done
fi

[ -n "$PAGE_BYTES" ] || { echo "bench: no engine was served, so there is no page size for the baseline" >&2; exit 1; }
echo "== baseline: a bare actix-web handler, $PAGE_BYTES bytes"
"$BASELINE" "127.0.0.1:$BASE_PORT" "$PAGE_BYTES" &
SERVER_PID=$!
# The baseline has no /healthz: its first answered /profile stands for it.
wait_for "http://127.0.0.1:$BASE_PORT/profile"
memory baseline "after start-up" VmRSS
reset_peak
for _ in $(seq 1 "$NOISE_RUNS"); do
    run baseline "GET /profile (static page)" 32 "http://127.0.0.1:$BASE_PORT/profile"
done
memory baseline "page load, 32 connections" VmHWM
run baseline "GET /profile (static page)" 256 "http://127.0.0.1:$BASE_PORT/profile"
memory baseline "page load, 256 connections" VmHWM
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

LOGIN_TIMEOUT="$LOGIN_TIMEOUT" REFERENCE_NAME="${REFERENCE_NAME:-${REFERENCE:+the binary $REFERENCE}}" python3 bench/report.py "$ROWS" "$DURATION" "$WARMUP" "$PAGE_BYTES" "$RESULTS"
echo "== wrote $RESULTS"
sed -n '/^## Memory/,/^<!-- bench\/run.sh: generated up to here -->/p' "$RESULTS"
