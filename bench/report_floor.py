#!/usr/bin/env python3
"""Tables for the floor and TLS blocks of bench/run.sh (docs/PERFORMANCE.md), as Markdown.

  report_floor.py floor FUNCTION.json FLOOR.json BOTO3.json
  report_floor.py floor-tls FUNCTION.json FLOOR.json
  report_floor.py tls RUST.json PY.json RUST-LIMITED.json PY-LIMITED.json

Reads what bench/runtime_emulator.py wrote. A benchmark report: targets are said met or
NOT met, nothing fails.
"""

import json
import statistics
import sys


def load(p):
    with open(p) as f:
        return json.load(f)


def med(values):
    return statistics.median(values)


def verdict(ok):
    return "**met**" if ok else "NOT met"


def load_note(*runs):
    before = max(r["loadavg_before"][0] for r in runs)
    after = max(r["loadavg_after"][0] for r in runs)
    return f"load average {before:.2f} before, {after:.2f} after"


def floor(fn_path, floor_path, py_path):
    fn, fl, py = load(fn_path), load(floor_path), load(py_path)
    init_fn, init_fl, init_py = (med(r["cold_start_ms"]) for r in (fn, fl, py))
    first_fn, first_fl = med(fn["first_invocation_ms"]), med(fl["first_invocation_ms"])
    p50_fn, p50_fl = fn["warm"]["p50_ms"], fl["warm"]["p50_ms"]
    cpu_fn, cpu_fl = fn["warm"]["cpu_p50_ms"], fl["warm"]["cpu_p50_ms"]
    rss_fn, rss_fl = fn["peak_rss_kib"] / 1024, fl["peak_rss_kib"] / 1024
    n = len(fn["cold_start_ms"])
    print(f"Function against the SDK's floor ({len(fl['cold_start_ms'])} cold starts and "
          f"{fl['warm']['invocations']} warm invocations each, interleaved with boto3; "
          f"{load_note(fn, fl, py)}):\n")
    print("| measure | transfer-chroot | floor | ratio | target | |")
    print("|---|---|---|---|---|---|")
    print(f"| init: spawn → first `GET /next` (median of {n}) | {init_fn:.2f} ms | {init_fl:.2f} ms "
          f"| {init_fn / init_fl:.2f}× | ≤ 1.25× | {verdict(init_fn / init_fl <= 1.25)} |")
    print(f"| warm p50 (every warm invocation 1 DescribeUser) | {p50_fn:.3f} ms | {p50_fl:.3f} ms "
          f"| {p50_fn / p50_fl:.2f}× | ≤ 1.15× | {verdict(p50_fn / p50_fl <= 1.15)} |")
    for name, rec in fn["warm"]["per_event"].items():
        other = fl["warm"]["per_event"].get(name)
        if other:
            print(f"| … `{name}` | {rec['p50_ms']:.3f} ms | {other['p50_ms']:.3f} ms "
                  f"| {rec['p50_ms'] / other['p50_ms']:.2f}× | | |")
    print(f"| warm CPU p50 | {cpu_fn:.3f} ms | {cpu_fl:.3f} ms | {cpu_fn / cpu_fl:.2f}× | — | |")
    print(f"| peak RSS (`VmHWM` after the warm invocations) | {rss_fn:.1f} MiB | {rss_fl:.1f} MiB "
          f"| {rss_fn / rss_fl:.2f}× | ≤ 1.4× | {verdict(rss_fn / rss_fl <= 1.4)} |")
    print(f"| first invocation (1 DescribeUser + 1 UpdateUser; the function also DescribeServer) "
          f"| {first_fn:.2f} ms | {first_fl:.2f} ms | {first_fn / first_fl:.2f}× | — | |")
    print(f"| init against boto3's ({init_py:.1f} ms) | 1/{init_py / init_fn:.1f} | "
          f"1/{init_py / init_fl:.1f} | | ≤ 1/10 | {verdict(init_fn * 10 <= init_py)} |")
    calls = {name: (rec["max_reads"], rec["max_writes"]) for name, rec in fn["warm"]["per_event"].items()}
    fcalls = {name: (rec["max_reads"], rec["max_writes"]) for name, rec in fl["warm"]["per_event"].items()}
    same = "the same" if calls == fcalls else "DIFFERENT"
    print(f"\nTransfer calls per warm invocation (reads, writes), {same} on both sides: "
          f"function {calls}, floor {fcalls}.")


def floor_tls(fn_path, floor_path):
    fn, fl = load(fn_path), load(floor_path)
    rows = []
    for r in (fn, fl):
        init, first = med(r["cold_start_ms"]), med(r["first_invocation_ms"])
        rows.append((init, first, init + first, r["warm"]["p50_ms"], r["peak_rss_kib"] / 1024))
    (a, b) = rows
    print(f"\nThe same over TLS (the function opens its connection during init, the floor on its "
          f"first call; {load_note(fn, fl)}):\n")
    print("| measure | transfer-chroot | floor | ratio |")
    print("|---|---|---|---|")
    for i, label in enumerate(["init", "first invocation", "init + first invocation", "warm p50"]):
        print(f"| {label} | {a[i]:.2f} ms | {b[i]:.2f} ms | {a[i] / b[i]:.2f}× |")
    print(f"| peak RSS | {a[4]:.1f} MiB | {b[4]:.1f} MiB | {a[4] / b[4]:.2f}× |")


def tls(*paths):
    runs = [load(p) for p in paths]
    print(f"First invocation after a cold start against a warm one, over TLS "
          f"({load_note(*runs)}):\n")
    print("| runtime | CPU | init | first invocation | its CPU | warm p50 | warm CPU p50 | first ÷ warm | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        limit = r.get("cpu_limit")
        cpu = (f"{limit['share']:.3f} of CPU {limit['cpu']} after init "
               f"({limit['quota_us']} µs per {limit['period_us']} µs)") if limit else "full speed"
        first = med(r["first_invocation_ms"])
        first_cpu = med(r.get("first_invocation_cpu_ms") or [float("nan")])
        p50 = r["warm"]["p50_ms"]
        ratio = first / p50
        target = ""
        if limit and r["name"].startswith("rust"):
            target = f"≤ 1.5×: {verdict(ratio <= 1.5)}"
        name = "transfer-chroot" if r["name"].startswith("rust") else "boto3 reference"
        print(f"| {name} | {cpu} | {med(r['cold_start_ms']):.1f} ms | {first:.2f} ms | {first_cpu:.2f} ms "
              f"| {p50:.2f} ms | {r['warm']['cpu_p50_ms']:.2f} ms | {ratio:.2f}× | {target} |")


def main():
    mode, *paths = sys.argv[1:]
    {"floor": floor, "floor-tls": floor_tls, "tls": tls}[mode](*paths)


if __name__ == "__main__":
    sys.exit(main())
