#!/usr/bin/env python3
"""Compares two result files of bench/runtime_emulator.py (the Rust function and the
boto3 reference) against the targets of issue 7, as text or Markdown.

  python3 bench/report.py target/bench/rust.json target/bench/python.json [--markdown]
      [--latency RUST50.json PY50.json] [--sqs SQS.json ...]

Exit status 0 always: a benchmark reports, it does not gate (targets show as
met / NOT met).
"""

import argparse
import json
import statistics

MIB = 1024


def load(path):
    with open(path) as f:
        return json.load(f)


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt(v, unit="ms", digits=2):
    if v != v:  # NaN
        return "n/a"
    return f"{v:.{digits}f} {unit}".strip()


def verdict(ok):
    return "met" if ok else "NOT met"


def per_event_rows(rw, pw, label, key):
    """One row per event both implementations ran: Rust, reference, ratio."""
    out = []
    for name, r in rw["per_event"].items():
        p = pw["per_event"].get(name)
        if not p or key not in r or key not in p:
            continue
        out.append((
            f"  {label} {name} ({r['max_reads']}R+{r['max_writes']}W)",
            fmt(r[key], digits=3), fmt(p[key], digits=3), f"{p[key] / r[key]:.1f}×", "", "",
        ))
    return out


def rows(rust, py, lat=None, sqs=None):
    out = []
    rc, pc = med(rust.get("cold_start_ms", [])), med(py.get("cold_start_ms", []))
    n_cold = min(len(rust.get("cold_start_ms", [])), len(py.get("cold_start_ms", [])))
    out.append((
        f"cold start: spawn → ready for the first event (median of {n_cold})",
        fmt(rc), fmt(pc), f"{rc / pc:.3f}× (1/{pc / rc:.1f})",
        "≤ 1/5 of reference", verdict(rc <= pc / 5),
    ))
    rf, pf = med(rust.get("first_invocation_ms", [])), med(py.get("first_invocation_ms", []))
    out.append((
        "first (cold) invocation, 1 read + 1 write (median)",
        fmt(rf), fmt(pf), f"{pf / rf:.1f}× faster", "—", "",
    ))
    rw, pw = rust["warm"], py["warm"]
    out.append((
        f"warm p50, all direct events ({rw['invocations']} invocations each)",
        fmt(rw["p50_ms"], digits=3), fmt(pw["p50_ms"], digits=3),
        f"{pw['p50_ms'] / rw['p50_ms']:.1f}× faster", "≥ 10× faster",
        verdict(pw["p50_ms"] / rw["p50_ms"] >= 10),
    ))
    out.append((
        "warm p99, all direct events",
        fmt(rw["p99_ms"], digits=3), fmt(pw["p99_ms"], digits=3),
        f"{pw['p99_ms'] / rw['p99_ms']:.1f}× faster", "—", "",
    ))
    out += per_event_rows(rw, pw, "warm p50", "p50_ms")
    # CPU the runtime process itself spends per invocation: no wake-up or scheduling
    # delays, no stand-in work. Informative (the target is on latency).
    if "cpu_p50_ms" in rw and "cpu_p50_ms" in pw:
        out.append((
            "CPU time per warm invocation, p50 (the runtime process, all threads)",
            fmt(rw["cpu_p50_ms"], digits=3), fmt(pw["cpu_p50_ms"], digits=3),
            f"{pw['cpu_p50_ms'] / rw['cpu_p50_ms']:.1f}× less", "—", "",
        ))
        out += per_event_rows(rw, pw, "CPU p50", "cpu_p50_ms")
    # The handler's own cost: the invocations that make no Transfer call at all.
    no_call = [r["p50_ms"] for r in rw["per_event"].values() if r["max_reads"] + r["max_writes"] == 0]
    if no_call:
        worst = max(no_call)
        out.append((
            "handler overhead without Transfer calls (worst no-call event, p50, incl. Runtime API round trip)",
            fmt(worst, digits=3), "", "", "< 1 ms", verdict(worst < 1.0),
        ))
    rr, pr = rust.get("peak_rss_kib", 0) / MIB, py.get("peak_rss_kib", 0) / MIB
    out.append((
        f"peak RSS (VmHWM after {rw['invocations']} warm invocations)",
        fmt(rr, "MiB", 1), fmt(pr, "MiB", 1), f"{rr / pr:.2f}×", "≤ 30 MB",
        verdict(rr * 1.048576 <= 30),
    ))
    reads = max(r["max_reads"] for r in rw["per_event"].values())
    writes = max(r["max_writes"] for r in rw["per_event"].values())
    unchanged_writes = max(
        [r["max_writes"] for r in rw["per_event"].values()
         if all(a.get("Status") in ("Unchanged", "Planned") for a in r["answers"])] or [0]
    )
    out.append((
        "AWS calls per target (max over all events)",
        f"{reads} read + {writes} write", "", "",
        "≤ 1 read + ≤ 1 write", verdict(reads <= 1 and writes <= 1),
    ))
    out.append((
        "writes when unchanged / planned",
        str(unchanged_writes), "", "", "0", verdict(unchanged_writes == 0),
    ))
    if lat:
        lr, lp = lat
        out.append((
            f"warm p50 at {lr['latency_ms']} ms per Transfer call, all direct events",
            fmt(lr["warm"]["p50_ms"]), fmt(lp["warm"]["p50_ms"]),
            f"{lp['warm']['p50_ms'] / lr['warm']['p50_ms']:.2f}×", "—", "",
        ))
    # One invocation of a single direct command that reads and writes, at the same
    # stand-in latency: the like-for-like "one call" for a batch whose records each
    # read and write.
    single_cmd = None
    if lat:
        writing = [r["p50_ms"] for r in lat[0]["warm"]["per_event"].values()
                   if r["max_reads"] == 1 and r["max_writes"] == 1]
        single_cmd = med(writing) if writing else None
    for run in sqs or []:
        ev = run["warm"]["per_event"]
        reads = max(r["max_reads"] for r in ev.values())
        writes = max(r["max_writes"] for r in ev.values())
        fails = sorted({a.get("batchItemFailures") for r in ev.values() for a in r["answers"]})
        one = run.get("single_call_ms") or float(run["latency_ms"])
        batch = run["warm"]["p50_ms"]
        ratios = f"{batch / one:.2f}× one Transfer call"
        ok = batch <= 3 * one
        if single_cmd and writes:
            ratios += f"; {batch / single_cmd:.2f}× one direct invocation (1R+1W, {single_cmd:.1f} ms)"
        out.append((
            f"SQS batch of 10 at {run['latency_ms']} ms, {reads}R+{writes}W per batch, "
            f"SQS_MAX_CONCURRENCY={run.get('sqs_concurrency', '?')} "
            f"(p50 of {run['warm']['invocations']}; p99 {run['warm']['p99_ms']:.1f} ms; "
            f"batchItemFailures {fails})",
            fmt(batch), "", ratios, "≤ 3× one call", verdict(ok) + " (vs one Transfer call)",
        ))
    if not sqs:
        out.append((
            "SQS batch of 10 at 50 ms stand-in latency",
            "skipped (SQS_WARM=0)", "", "", "≤ 3× one call", "",
        ))
    return out


def disagreements(rust, py):
    """Events the two implementations answered differently (they must not)."""
    bad = []
    for name, r in rust["warm"]["per_event"].items():
        p = py["warm"]["per_event"].get(name)
        if p and r["answers"] != p["answers"]:
            bad.append((name, r["answers"], p["answers"]))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rust")
    ap.add_argument("python")
    ap.add_argument("--latency", nargs=2, metavar=("RUST", "PYTHON"))
    ap.add_argument("--sqs", nargs="+", help="SQS batch runs (results JSON)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rust, py = load(args.rust), load(args.python)
    lat = (load(args.latency[0]), load(args.latency[1])) if args.latency else None
    sqs = [load(p) for p in args.sqs] if args.sqs else None
    table = rows(rust, py, lat, sqs)
    head = ("measure", "Rust (transfer-chroot)", f"boto3 reference ({py.get('runtime_client')})",
            "ratio", "target", "")
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
        for row in [head] + table:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    loads = [d.get(k) for d in (rust, py) for k in ("loadavg_before", "loadavg_after") if d.get(k)]
    if loads:
        print()
        print("1-minute load average while measuring: " + ", ".join(f"{l[0]:.2f}" for l in loads)
              + " (2 cores; other work on the machine shows up as noise in both columns)")
    bad = disagreements(rust, py)
    print()
    if bad:
        print("ANSWERS DIFFER (the comparison is not like for like):")
        for name, r, p in bad:
            print(f"  {name}: rust {r} / reference {p}")
    else:
        print("Both answered every event alike: " + ", ".join(
            f"{n}={'/'.join(str(a.get('Status')) + ('/' + a['Code'] if a.get('Code') else '') for a in r['answers'])}"
            for n, r in rust["warm"]["per_event"].items()))


if __name__ == "__main__":
    main()
