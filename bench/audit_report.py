#!/usr/bin/env python3
"""Markdown table from bench/audit.py's audit.json (docs/PERFORMANCE.md); with a
directory (--directory), the Identity Store's table after it."""
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


dd = d.get("directory")
if dd:
    # No boto3 reference with a directory; the floor adds the directory's calls / 20.
    moved = sum(dd["drifted_by_profile"].values())
    drifted = f"{exp['Drifted'] - moved:,} drifted (PATH) + {moved:,} drifted by profile (LOGICAL)"
    transfer_floor = d["transfer_floor_seconds"]
    floor_row = ("floor: Transfer calls / R + directory calls / 20",
                 f"{transfer_floor:.1f} s + {dd['floor_seconds']:.1f} s = {floor:.1f} s", "—")
    ref_cell = "—"
else:
    drifted = f"{exp['Drifted']:,} drifted (PATH)"
    floor_row = ("floor: calls needed / R", f"{floor:.1f} s", f"{ref_floor:.1f} s")
    ref_cell = (f"{ref_needed:,} (describes {d.get('reference_needed', d['needed'])['DescribeUser']:,}: "
                "no read before a write)")
rows = [
    ("fleet", f"{d['users']:,} users: {drifted}, {exp['Chrooted']:,} chrooted, "
              f"{exp['NeedsAttention']:,} LOGICAL outside the roots, {exp['Exempt']:,} exempt", ""),
    ("rate limit", f"{rate:g} requests/s for the whole API (burst {int(rate)})", ""),
    ("Transfer calls needed" if dd else "calls needed",
     f"{d['calls_needed']:,} (pages {d['needed']['ListUsers']}, describes "
     f"{d['needed']['DescribeUser']:,}, writes {d['needed']['UpdateUser']:,}, DescribeServer 1)",
     ref_cell),
    floor_row,
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
line("Transfer requests sent (all, throttled included)" if dd else "requests sent (all, throttled included)",
     lambda s: f"{s['calls']['Requests']:,}")
line("requests by operation", lambda s: ops(s["calls"]))
line("throttling errors seen (429)", lambda s: f"{s['calls']['Throttled']:,}")
line("left drifted afterwards (audit without Fix)", lambda s: f"{unfixed(s):,}")
line("invocations", lambda s: f"{s.get('invocations', 1)}", lambda s: "1 (a script)")
line("peak RSS", lambda s: f"{s['peak_rss_kib'] / 1024:.1f} MiB")
if "rust_100" in d:
    print(f"| peak RSS at 100 users (transfer-chroot) | {d['rust_100']['peak_rss_kib'] / 1024:.1f} MiB | |")

if dd:
    seen = r["calls"].get("Directory", {})
    by = seen.get("ByOperation", {})
    need = dd["needed"]
    bound = dd["bound"]
    groups = ", ".join(f"{k} {v:,}" for k, v in dd["groups"].items())
    moved = ", ".join(f"{k} {v:,}" for k, v in dd["drifted_by_profile"].items())
    print()
    print("| the Identity Store (IDENTITY_STORE_ID) | transfer-chroot |")
    print("|---|---|")
    rows = [
        ("directory", f"{dd['users']:,} users (every Transfer user), groups: {groups}; "
                      f"profiled members {dd['profiled_members']:,}"),
        ("drifted by profile (members still at the template's home)", moved),
        ("rate limit", f"identitystore:* {dd['rate']:g} requests/s (burst {int(dd['rate'])}), "
                       f"Transfer {rate:g} requests/s"),
        ("calls needed", f"{dd['calls_needed']:,}: " + ", ".join(f"{k} {v:,}" for k, v in need.items())),
        ("bound: (users + profiled members) / 100 + constant",
         f"{bound['per_page']:,.0f} + {bound['constant']} = {bound['per_page'] + bound['constant']:,.0f}"),
        ("Identity Store requests seen (the stand-in's log)",
         f"**{seen.get('Requests', 0):,}**: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by.items()))),
        ("the function's own count (`directory_requests`, last \"audit\" line)",
         f"{r.get('function_log', {}).get('directory_requests', '—')}"),
        ("per operation against needed", ", ".join(
            f"{k} {by.get(k, 0):,}/{v:,}" for k, v in need.items())
         + (f"; other: {sorted(set(by) - set(need))}" if set(by) - set(need) else "")),
        ("throttled (ThrottlingException)", f"{seen.get('Throttled', 0):,}"),
        ("other errors", f"{seen.get('ErrorsOtherThanThrottling', 0):,}"),
    ]
    if seen.get("MeanRate"):
        g = seen["GapMs"]
        rows += [
            ("observed rate (first to last request)",
             f"{seen['MeanRate']:.2f} requests/s over {seen['Seconds']:.1f} s"),
            ("most arriving within any one second", f"{seen['MostInOneSecond']}"),
            ("gap between requests (min / median / max)",
             f"{g['min']:.1f} / {g['median']:.1f} / {g['max']:.1f} ms"),
        ]
    rows += [
        ("floor: Transfer calls / R + directory calls / 20",
         f"{transfer_floor:.1f} s + {dd['floor_seconds']:.1f} s = {floor:.1f} s"),
        ("total time", f"**{r['seconds']:.1f} s ({r['seconds'] / floor:.3f}× the floor)**"),
    ]
    if "rust_100" in d and d["rust_100"].get("directory_calls"):
        rows.append(("Identity Store calls at 100 users",
                     ", ".join(f"{k} {v}" for k, v in sorted(d["rust_100"]["directory_calls"].items()))))
    for name, value in rows:
        print(f"| {name} | {value} |")
