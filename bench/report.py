"""Turns bench/run.sh's measurements into bench/RESULTS.md."""

import datetime
import os
import platform
import sys

rows_path, duration, warmup, page_bytes = sys.argv[1:5]
rows = [line.rstrip("\n").split("\t") for line in open(rows_path) if line.strip()]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(engine, scenario, conns):
    for row in rows:
        if row[0] == engine and row[1] == scenario and row[2] == str(conns):
            rps, p50, p99, errors = row[3].split()
            return float(rps), float(p50), float(p99), int(errors)
    return None


base32 = measure("baseline", "GET /profile (static page)", 32)
out = []
out.append("# Porter benchmark results\n")
out.append(
    f"Run on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with `bench/run.sh`, "
    f"on {os.cpu_count()} cores ({cpu_model()}), the load generator (wrk, 1 thread) "
    f"sharing them with the server. Each scenario: {warmup} s warm-up, then {duration} s measured. "
    f"SQLite database (PostgreSQL for the engines marked `@postgres`), release build, "
    f"`RUST_LOG=warn`. Pages of {page_bytes.strip()} bytes.\n"
)
out.append("Figures are from one run on a shared machine: read them as ratios, not absolutes.\n")
out.append("| engine | scenario | connections | req/s | p50 ms | p99 ms | errors | req/s vs baseline |")
out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
rss = {}
for engine, scenario, conns, values in rows:
    if scenario == "peak RSS":
        rss[engine] = int(values) / 1024
        continue
    rps, p50, p99, errors = values.split()
    ratio = f"{float(rps) / base32[0]:.0%}" if base32 and engine != "baseline" else ""
    out.append(
        f"| {engine} | {scenario} | {conns} | {float(rps):,.0f} | {float(p50):.2f} | "
        f"{float(p99):.2f} | {errors} | {ratio} |"
    )
out.append("")
out.append(
    "Peak RSS of the server (VmHWM, after every scenario including the login storm): "
    + ", ".join(f"{engine} {mb:.1f} MB" for engine, mb in rss.items())
    + ".\n"
)

checks = []
profile = measure("db", "GET /profile", 32)
storm = measure("db", "GET /profile during login storm", 32)
if base32 and profile:
    ratio = profile[0] / base32[0]
    checks.append((ratio >= 0.20, f"authenticated `GET /profile` (db engine, SQLite) serves {ratio:.0%} of the baseline's req/s (target: at least 20%)"))
    p99_ratio = profile[2] / base32[2]
    checks.append((p99_ratio <= 3.0, f"`GET /profile` p99 at 32 connections is {p99_ratio:.2f}× the baseline's p99 (target: at most 3×)"))
engines = list(dict.fromkeys(row[0] for row in rows if row[0] != "baseline"))
for engine in engines:
    calm = measure(engine, "GET /profile", 32)
    busy = measure(engine, "GET /profile during login storm", 32)
    if calm and busy:
        ratio = busy[2] / calm[2]
        checks.append((ratio <= 3.0 and busy[3] == 0, f"{engine}: `GET /profile` p99 during the login storm is {ratio:.2f}× its p99 without it, with {busy[3]} errors (target: at most 3×, no errors)"))
for where in ("", "@postgres"):
    plain = measure(f"db{where}", "GET /profile", 32)
    cached = measure(f"cached_db{where}", "GET /profile", 32)
    if plain and cached:
        ratio = cached[0] / plain[0]
        database = "PostgreSQL" if where else "SQLite"
        checks.append((ratio >= 1.0 or not where, f"cached_db serves authenticated `GET /profile` at {ratio:.2f}× db's req/s on {database} (target on PostgreSQL: faster than db)"))
errors = sum(int(values.split()[3]) for _, scenario, _, values in rows if scenario != "peak RSS")
checks.append((errors == 0, f"errors across every scenario: {errors} (target: 0)"))
if rss:
    peak = max(rss.values())
    checks.append((peak < 64, f"highest peak RSS: {peak:.1f} MB (target: under 64 MB)"))

out.append("## Targets\n")
for ok, text in checks:
    out.append(f"- [{'x' if ok else ' '}] {'met' if ok else 'MISSED'}: {text}")
out.append("")
print("\n".join(out))
