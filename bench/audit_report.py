#!/usr/bin/env python3
"""Markdown table from bench/audit.py's audit.json (docs/PERFORMANCE.md)."""
import json
import sys

d = json.load(open(sys.argv[1]))
r, rate, floor = d["rust"], d["rate"], d["floor_seconds"]
p = d.get("python")
exp = d["expected"]
# Each side against its own calls: transfer-chroot reads a drifted user before writing it.
ref_needed = d.get("reference_calls_needed", d["calls_needed"])
ref_floor = d.get("reference_floor_seconds", floor)


def ops(c):
    b = c["ByOperation"]
    return ", ".join(f"{k} {v:,}" for k, v in sorted(b.items()))


def unfixed(side):
    return side["left"].get("drifted", side["left"].get("Drifted", 0))


rows = [
    ("fleet", f"{d['users']:,} users: {exp['Drifted']:,} drifted (PATH), {exp['Chrooted']:,} chrooted, "
              f"{exp['NeedsAttention']:,} LOGICAL outside the roots, {exp['Exempt']:,} exempt", ""),
    ("rate limit", f"{rate:g} requests/s for the whole API (burst {int(rate)})", ""),
    ("calls needed", f"{d['calls_needed']:,} (pages {d['needed']['ListUsers']}, describes "
                     f"{d['needed']['DescribeUser']:,}, writes {d['needed']['UpdateUser']:,}, DescribeServer 1)",
     f"{ref_needed:,} (describes {d.get('reference_needed', d['needed'])['DescribeUser']:,}: "
     "no read before a write)"),
    ("floor: calls needed / R", f"{floor:.1f} s", f"{ref_floor:.1f} s"),
]
print(f"| measure | transfer-chroot | boto3 reference |")
print("|---|---|---|")
for name, a, b in rows:
    print(f"| {name} | {a} | {b} |")


def side(s, name):
    return s[name] if s else "—"


def line(name, fr, fp=None):
    print(f"| {name} | {fr(r)} | {fp(p) if p and fp else (fr(p) if p else '—')} |")


line("total time", lambda s: f"{s['seconds']:.1f} s ({s['seconds'] / floor:.3f}× its floor)",
     lambda s: f"{s['seconds']:.1f} s ({s['seconds'] / ref_floor:.3f}× its floor)")
line("CPU time of the process (user + system)", lambda s: f"{s['cpu_seconds']:.1f} s" if "cpu_seconds" in s else "—")
line("requests sent (all, throttled included)", lambda s: f"{s['calls']['Requests']:,}")
line("requests by operation", lambda s: ops(s["calls"]))
line("throttling errors seen (429)", lambda s: f"{s['calls']['Throttled']:,}")
line("left drifted afterwards (audit without Fix)", lambda s: f"{unfixed(s):,}")
line("invocations", lambda s: f"{s.get('invocations', 1)}", lambda s: "1 (a script)")
line("peak RSS", lambda s: f"{s['peak_rss_kib'] / 1024:.1f} MiB")
print(f"| peak RSS at 100 users (transfer-chroot) | {d['rust_100']['peak_rss_kib'] / 1024:.1f} MiB | |")
