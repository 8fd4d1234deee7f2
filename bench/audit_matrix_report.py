#!/usr/bin/env python3
"""One markdown table row per bench/audit.py case (bench/audit-matrix.sh), for
docs/PERFORMANCE.md "The audit's pipeline". Usage: audit_matrix_report.py CASE.json..."""
import json
import sys


def left(side):
    return side["left"].get("Drifted", 0)


def row(d):
    r, p = d["rust"], d.get("python")
    limit = f"{d['rate']:g}/s, burst {d['burst']:,}" if d["rate"] > 0 else "none"
    fleet = f"{d['users']:,} {d['fleet']}"
    exact = r["counts"].get("Chrooted", 0) + r["counts"].get("Drifted", 0) + r["counts"].get(
        "NeedsAttention", 0) + r["counts"].get("Exempt", 0) == d["users"]
    exact = "exact" if exact and all(r["counts"].get(k, 0) == v for k, v in d["expected"].items()) else "NOT exact"
    if d["rate"] > 0:
        speed = f"{r['seconds']:.1f} s = **{r['seconds'] / d['floor_seconds']:.3f}×** calls/R"
        ref = (f"{p['seconds']:.1f} s = {p['seconds'] / d['reference_floor_seconds']:.2f}× "
               f"({d.get('threads', 1)} thread{'s' if d.get('threads', 1) > 1 else ''})") if p else "—"
    else:
        speed = f"{r['seconds']:.1f} s = **{d['users'] / r['seconds']:.0f} targets/s**"
        ref = (f"{p['seconds']:.1f} s = {d['users'] / p['seconds']:.0f} targets/s "
               f"({d.get('threads', 1)} threads)") if p else "—"
    tpi = r.get("targets_per_invocation", {})
    conc = d.get("concurrency") or "8 (default)"
    return (f"| {d['case']} | {fleet} | {limit} | {d['latency_ms']} ms | {d['deadline_ms'] / 1000:g} s | {conc} "
            f"| {speed} | {r['invocations']} (min {tpi.get('min', '—')}, median {tpi.get('median', '—')} targets) "
            f"| {r['calls']['Throttled']:,} | {exact}, {left(r)} left | {r['peak_rss_kib'] / 1024:.1f} MiB | {ref} |")


print("| case | fleet | limit | latency | invocation | AUDIT_CONCURRENCY | transfer-chroot | invocations "
      "| throttled | counts, left drifted | peak RSS | boto3 reference |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    print(row(json.load(open(path))))
