"""Turns bench/run.sh's measurements into the generated part of bench/RESULTS.md.

    python3 bench/report.py ROWS DURATION WARMUP PAGE_BYTES RESULTS

ROWS is run.sh's tab-separated file: `load` rows (engine, scenario,
connections, req/s, p50 ms, p99 ms, errors, requests, CPU ms, requests the
CPU served, shared) and `mem` rows (engine, what, kB). The regression
check's rows name their engine `before:ENGINE` (the reference binary) or
`now:ENGINE` (this build). RESULTS is read first, for the hand-written
sections around the generated part, then rewritten. REFERENCE_NAME (in the
environment) says what the reference binary was built from.
"""

import datetime
import math
import os
import platform
import statistics
import sys

START = "<!-- bench/run.sh: generated from here -->"
END = "<!-- bench/run.sh: generated up to here -->"
TITLE = "# Porter benchmark results"

# Targets.
PROFILE_SHARE = 0.35  # db engine's GET /profile req/s, share of the baseline's
PROFILE_P99 = 2.0  # db engine's GET /profile p99, times the baseline's
POSTGRES_TAIL = 5.0  # @postgres GET /profile p99, times its own p50
STORM_P99 = 3.0  # GET /profile p99 during the login storm, times its calm p99
MEMORY_LIMITS = (
    ("after start-up", 12),
    ("page load, 32 connections", 16),
    ("login storm peak", 48),
)
# Shown beside the limits, without one: see "Memory at 256 connections" in
# RESULTS.md's hand-written part for what actix-web itself keeps per
# connection and per request.
MEMORY_AT_256 = "page load, 256 connections"
MEMORY_COLUMNS = (
    "after start-up",
    "page load, 32 connections",
    MEMORY_AT_256,
    "login storm peak",
    "3 s after the storm",
)
MIN_NOISE = 1.10  # a drop smaller than this ratio is never called a regression
BEFORE, NOW = "before:", "now:"  # the regression check's engine labels
# The storm's own logins yield the cores to pages by design (HASHING_NICE):
# the storm target trades their rate for the pages' p99.
TRADED = "POST /login (the storm)"


def autogroup():
    """The kernel's autogroup scheduling as the run had it (run.sh turns it off where it may)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return "on" if f.read().strip() == "1" else "off"
    except OSError:
        return "not in this kernel"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def significant(x, digits=3):
    """`x` with `digits` significant figures, never in scientific notation."""
    if x <= 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(x)))
    return f"{x:.{decimals}f}"


class Row:
    """One table row: a scenario's runs, the median of each column."""

    def __init__(self, engine, scenario, conns):
        self.engine, self.scenario, self.conns = engine, scenario, conns
        self.runs = []  # (req/s, p50, p99, errors, CPU ms per request)
        self.shared = False

    def add(self, rps, p50, p99, errors, requests, cpu_ms, cpu_requests, shared):
        per_request = float(cpu_ms) / int(cpu_requests) if int(cpu_requests) else 0.0
        self.runs.append((float(rps), float(p50), float(p99), int(errors), per_request))
        self.shared = self.shared or shared == "1"

    def median(self, column):
        return statistics.median(run[column] for run in self.runs)

    @property
    def rps(self):
        return self.median(0)

    @property
    def p50(self):
        return self.median(1)

    @property
    def p99(self):
        return self.median(2)

    @property
    def errors(self):
        return sum(run[3] for run in self.runs)

    @property
    def cpu(self):
        return self.median(4)

    @property
    def noise(self):
        """max/min req/s over the runs."""
        rates = [run[0] for run in self.runs]
        return max(rates) / min(rates) if min(rates) > 0 else math.inf


def read_rows(path):
    rows, memory = {}, {}
    for line in open(path):
        if not line.strip():
            continue
        kind, *fields = line.rstrip("\n").split("\t")
        if kind == "load":
            engine, scenario, conns, *values = fields
            key = (engine, scenario, conns)
            rows.setdefault(key, Row(*key)).add(*values)
        elif kind == "mem":
            engine, what, kb = fields
            memory.setdefault(engine, {})[what] = int(kb) / 1024
    return rows, memory


def merge(old, generated):
    """The new results file: `generated` between the markers, the rest kept.

    Without markers, the old file is taken to be an older run.sh's output
    followed by hand-written sections: the generated part (up to the first
    heading after `## Targets`) is dropped and the rest kept after the end
    marker."""
    block = f"{START}\n\n{generated.strip()}\n\n{END}"
    if START in old and END in old and old.index(START) < old.index(END):
        before, rest = old.split(START, 1)
        return before + block + rest.split(END, 1)[1]
    lines = old.splitlines(keepends=True)
    rest = lines
    targets = next((i for i, line in enumerate(lines) if line.startswith("## Targets")), None)
    if targets is not None:
        following = (i for i in range(targets + 1, len(lines)) if lines[i].startswith("## "))
        rest = lines[next(following, len(lines)) :]
    rest = "".join(rest).strip("\n")
    return f"{TITLE}\n\n{block}\n" + (f"\n{rest}\n" if rest else "")


def main():
    rows_path, duration, warmup, page_bytes, results_path = sys.argv[1:6]
    every_row, every_memory = read_rows(rows_path)
    try:
        old = open(results_path).read()
    except FileNotFoundError:
        old = ""

    def compared(label):
        return label.startswith((BEFORE, NOW))

    rows = {key: r for key, r in every_row.items() if not compared(key[0])}
    memory = {label: m for label, m in every_memory.items() if not compared(label)}

    def counterpart(label):
        if label.startswith(BEFORE):
            return NOW + label[len(BEFORE) :]
        return BEFORE + label[len(NOW) :]

    # (engine, scenario, connections) -> (before, now), in the order they ran.
    pairs, unpaired = {}, []
    for (label, scenario, conns), r in every_row.items():
        if not compared(label):
            continue
        other = every_row.get((counterpart(label), scenario, conns))
        if other is None:
            unpaired.append(f"{label} {scenario} ({conns})")
        elif label.startswith(BEFORE):
            pairs[(label[len(BEFORE) :], scenario, conns)] = (r, other)

    def row(engine, scenario, conns=32):
        return rows.get((engine, scenario, str(conns)))

    base32 = row("baseline", "GET /profile (static page)")
    engines = list(dict.fromkeys(key[0] for key in rows if key[0] != "baseline"))
    noisy = [r for r in rows.values() if len(r.runs) > 1]

    out = []
    out.append(
        f"Run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with `bench/run.sh`, "
        f"on {os.cpu_count()} cores ({cpu_model()}), the load generator (wrk, 1 thread) "
        f"sharing them with the server. Each scenario: {warmup} s warm-up, then {duration} s measured. "
        f"SQLite database (PostgreSQL for the engines marked `@postgres`), release build, "
        f"`RUST_LOG=warn`. Pages of {page_bytes.strip()} bytes. wrk waits "
        f"{os.environ.get('LOGIN_TIMEOUT', '5s')} for a login (its default, 2 s, for a page) "
        f"before counting it as an error. The kernel's autogroup scheduling: {autogroup()}.\n"
    )
    out.append("Figures are from one run on a shared machine: read them as ratios, not absolutes.\n")
    out.append(
        "| engine | scenario | connections | req/s | p50 ms | p99 ms | errors | req/s vs baseline | CPU ms/req |"
    )
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows.values():
        ratio = f"{r.rps / base32.rps:.0%}" if base32 and r.engine != "baseline" else ""
        cpu = significant(r.cpu) + (" †" if r.shared else "")
        out.append(
            f"| {r.engine} | {r.scenario} | {r.conns} | {r.rps:,.0f} | {r.p50:.2f} | "
            f"{r.p99:.2f} | {r.errors} | {ratio} | {cpu} |"
        )
    out.append("")
    out.append(
        "CPU ms/req: the server process's user and system CPU time over the measured run "
        "(`/proc/PID/stat`), divided by the requests completed in it; wrk, PostgreSQL and "
        "Redis are not counted. † The login-storm window: GET /profile and the storm's "
        "POST /login ran together, so both rows show the same figure, the window's CPU "
        "divided by the requests of both loads completed within it (the storm's counted "
        "response by response)."
    )
    if noisy:
        out.append(
            "Rows run more than once (see Run-to-run noise) show the median of each column; "
            "their errors are the sum over the runs."
        )
    out.append("")

    out.append("## Memory\n")
    out.append(
        "The server's resident memory, MiB: after start-up is VmRSS once it has answered its "
        "first `/healthz` (the baseline: its first `/profile`); page load is the peak "
        "(VmHWM, reset after the sign-in) over the GET scenarios at 32 connections, then "
        "the same peak once signed-in `/profile` (the baseline: its page) has also run at 256; "
        "login storm peak is "
        "the peak, reset again, over `POST /login` and the storm; the last column is VmRSS "
        "3 s after the storm ended.\n"
    )
    out.append("| server | " + " | ".join(MEMORY_COLUMNS) + " |")
    out.append("| --- |" + " ---: |" * len(MEMORY_COLUMNS))
    for engine, figures in memory.items():
        cells = [f"{figures[what]:.1f}" if what in figures else "" for what in MEMORY_COLUMNS]
        out.append(f"| {engine} | " + " | ".join(cells) + " |")
    out.append("")

    out.append("## Run-to-run noise\n")
    if noisy:
        out.append(
            "The same scenario run again in the same go, each after its own warm-up: "
            "req/s over the runs, and each run's p99.\n"
        )
        out.append(
            "| engine | scenario | connections | runs | min req/s | median | max | max/min "
            "| p99 ms, each run |"
        )
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in noisy:
            rates = [run[0] for run in r.runs]
            p99s = " / ".join(f"{run[2]:.2f}" for run in r.runs)
            out.append(
                f"| {r.engine} | {r.scenario} | {r.conns} | {len(rates)} | {min(rates):,.0f} | "
                f"{statistics.median(rates):,.0f} | {max(rates):,.0f} | {r.noise:.2f} | {p99s} |"
            )
    else:
        out.append("No scenario ran more than once (NOISE_RUNS=1).")
    out.append("")

    checks = []  # (met, text, details)

    def check(ok, text, details=()):
        checks.append((ok, text, list(details)))

    profile = row("db", "GET /profile")
    if base32 and profile:
        ratio = profile.rps / base32.rps
        check(
            ratio >= PROFILE_SHARE,
            f"authenticated `GET /profile` (db engine, SQLite, 32 connections) serves {ratio:.0%} "
            f"of the baseline's req/s (target: at least {PROFILE_SHARE:.0%})",
        )
        ratio = profile.p99 / base32.p99
        check(
            ratio <= PROFILE_P99,
            f"its p99 is {ratio:.2f}× the baseline's p99 at 32 connections "
            f"(target: at most {PROFILE_P99:g}×)",
        )
    for engine, informative in (("db@postgres", False), ("cached_db@postgres", True)):
        r = row(engine, "GET /profile")
        if r:
            ratio = r.p99 / r.p50
            check(
                ratio <= POSTGRES_TAIL,
                f"{engine}: `GET /profile` p99 at 32 connections is {ratio:.2f}× its p50 "
                f"(target: at most {POSTGRES_TAIL:g}×{'; informative' if informative else ''})",
            )
    for engine in engines:
        calm = row(engine, "GET /profile")
        busy = row(engine, "GET /profile during login storm")
        storm = row(engine, "POST /login (the storm)")
        if calm and busy:
            ratio = busy.p99 / calm.p99
            storm_errors = storm.errors if storm else 0
            check(
                ratio <= STORM_P99 and busy.errors == 0 and storm_errors == 0,
                f"{engine}: `GET /profile` p99 during the login storm (the median of "
                f"{len(busy.runs)} windows) is {ratio:.2f}× its p99 without it (the median of "
                f"{len(calm.runs)}), with {busy.errors} errors, and {storm_errors} in the storm's logins "
                f"(target: at most {STORM_P99:g}×, no errors)",
            )
    for engine in engines:
        figures = memory.get(engine, {})
        parts, ok = [], True
        for what, limit in MEMORY_LIMITS:
            if what not in figures:
                ok = False
                parts.append(f"{what} not measured")
                continue
            missed = figures[what] > limit
            ok = ok and not missed
            parts.append(f"{figures[what]:.1f} MiB {what}{' (MISSED)' if missed else ''}")
        if MEMORY_AT_256 in figures:
            parts.append(f"{figures[MEMORY_AT_256]:.1f} MiB {MEMORY_AT_256} (no limit)")
        limits = ", ".join(f"{what} at most {limit} MiB" for what, limit in MEMORY_LIMITS)
        check(ok, f"{engine}: memory {', '.join(parts)} (target: {limits})")
    for where in ("", "@postgres"):
        plain = row(f"db{where}", "GET /profile")
        cached = row(f"cached_db{where}", "GET /profile")
        if plain and cached:
            ratio = cached.rps / plain.rps
            database = "PostgreSQL" if where else "SQLite"
            check(
                ratio >= 1.0 or not where,
                f"cached_db serves authenticated `GET /profile` at {ratio:.2f}× db's req/s on "
                f"{database} (target on PostgreSQL: faster than db)",
            )
    errors = sum(r.errors for r in rows.values())
    check(errors == 0, f"errors across every scenario: {errors} (target: 0)")

    reference = os.environ.get("REFERENCE_NAME", "")
    if pairs:
        reference = reference or "the reference binary"
        rounds = max(len(side.runs) for pair in pairs.values() for side in pair)
        # The noise: how far one binary's rounds spread, at its widest. The
        # storm's windows are left out (their req/s depends on how the two
        # loads shared the cores), and so is a round that served nothing,
        # which fails the check below rather than allowing any drop.
        widest = max(
            (
                side
                for pair in pairs.values()
                for side in pair
                if len(side.runs) > 1
                and "storm" not in side.scenario
                and math.isfinite(side.noise)
            ),
            key=lambda side: side.noise,
            default=None,
        )
        noise = max(widest.noise, MIN_NOISE) if widest else MIN_NOISE
        out.append("## Against the code before\n")
        out.append(
            f"The regression check: the scenarios of the engines below served by {reference} "
            f"(before) and by this build (now) in turn, each on a fresh server and database, "
            f"{rounds} rounds, who goes first alternating from round to round. req/s and p99 "
            f"are the medians of the rounds; errors are summed over them; spread is the larger "
            f"max/min of the two sides' rounds. The run-to-run noise is the largest spread of "
            f"any row but the storm's (whose req/s depends on how the two loads shared the "
            f"cores), at least {MIN_NOISE:.2f}×: this run, {noise:.2f}×. A row is slower when "
            f"now falls short of before by more than that noise, or than its own spread where "
            f"that is larger; a round that served nothing, or an error on the now side, fails "
            f"the check. The storm's own logins are shown but not judged: they yield the cores "
            f"to pages by design, the price of the storm's p99 target.\n"
        )
        out.append(
            "| engine | scenario | connections | req/s before | req/s now | now/before "
            "| spread | p99 ms before | p99 ms now | errors before / now |"
        )
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        failed = []
        for (engine, scenario, conns), (before, now) in pairs.items():
            ratio = now.rps / before.rps if before.rps > 0 else math.inf
            spread = max(before.noise, now.noise)
            judged = scenario != TRADED
            where = f"{engine} {scenario} ({conns} connections)"
            if judged and not math.isfinite(spread):
                failed.append(f"a round served nothing: {where}")
            elif judged and now.rps * max(noise, spread) < before.rps:
                failed.append(f"slower: {where}: {ratio:.2f}×")
            if now.errors:
                failed.append(f"errors: {where}: {now.errors}")
            out.append(
                f"| {engine} | {scenario} | {conns} | {before.rps:,.0f} | {now.rps:,.0f} | "
                f"{ratio:.2f}×{'' if judged else ' (not judged)'} | {spread:.2f} | "
                f"{before.p99:.2f} | {now.p99:.2f} | {before.errors} / {now.errors} |"
            )
        out.append("")
        judged_rows = sum(1 for key in pairs if key[1] != TRADED)
        source = (
            f"{widest.engine} {widest.scenario}, {widest.conns} connections"
            if widest and widest.noise >= MIN_NOISE
            else "the floor"
        )
        check(
            not failed,
            f"no scenario slower than with {reference} by more than the run-to-run noise, "
            f"measured by repeating each scenario {rounds} times with each binary "
            f"({noise:.2f}×, from {source}): {judged_rows} rows compared, "
            f"{sum(1 for text in failed if text.startswith('slower'))} slower",
            failed + ([f"not paired: {'; '.join(unpaired)}"] if unpaired else []),
        )
    elif reference:
        check(
            False,
            f"no scenario slower than with {reference}: not measured, no scenario ran on both "
            f"binaries (REFERENCE_ENGINES, REFERENCE_ROUNDS)",
            [f"not paired: {'; '.join(unpaired)}"] if unpaired else [],
        )
    else:
        check(
            False,
            "no scenario slower than before by more than the run-to-run noise: not measured "
            "(set REFERENCE_DIR to a build of the code to compare with)",
        )

    out.append("## Targets\n")
    for ok, text, details in checks:
        out.append(f"- [{'x' if ok else ' '}] {'met' if ok else 'MISSED'}: {text}")
        out.extend(f"  - {detail}" for detail in details)

    merged = merge(old, "\n".join(out))
    temporary = f"{results_path}.tmp"
    with open(temporary, "w") as f:
        f.write(merged)
    os.replace(temporary, results_path)


main()
