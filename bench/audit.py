#!/usr/bin/env python3
"""The fleet-audit benchmark (bench/audit.sh runs it; docs/PERFORMANCE.md has the figures).

A fleet of N users on one server of the stand-in, mixed:
  50 %   PATH, home below the root            -> Drifted: one UpdateUser each
  30 %   LOGICAL, chrooted below the root     -> Chrooted: one DescribeUser each
  rest   LOGICAL, chrooted outside the roots  -> NeedsAttention: one DescribeUser, never written
  0.1 %  PATH, home "/", in EXEMPT_USERS      -> Exempt: no call
with the stand-in limiting the whole API (every operation, one shared token bucket,
"Operation": "*") to R requests a second, burst R.

1. transfer-chroot: the release binary under the compiled Runtime API emulator (the
   template's Timeout, 40 s, as each invocation's deadline), invoked with
   {"Action": "Audit", "Fix": true} and then with each answer's Continuation until
   the run is complete, as `aws lambda invoke` by hand would (no command queue: the
   fixes are applied in the invocation). Each fix is a reconcile: the drifted user is
   described again right before its write, so a change made since the listing is never
   undone; calls are pages + describes of LOGICAL users + one describe and one write
   per drifted user.
2. The boto3 reference (bench/reference/audit.py): the same list -> describe ->
   update with botocore's standard retries, against a fresh stand-in, same fleet, same R.
3. After each: the limit lifted, an audit without Fix by transfer-chroot, to count
   what was left drifted.
4. transfer-chroot on a fleet of 100 (same mix), for its peak RSS against N's.

The floor for a run is that side's calls needed / R: list pages + describes of LOGICAL
users + one write per drifted user, plus for transfer-chroot one describe per drifted
user (the reconcile's read) and one DescribeServer per execution environment. Standard
library only.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtime_emulator import StandIn, cpu_ns, spawn_server, stop, vm_hwm_kib  # noqa: E402
import http.client  # noqa: E402

SERVER = "s-0123456789abcdef0"
ROOT = "/acme-sftp/home"


def logical_fleet(n):
    """n LOGICAL users chrooted below the root: one DescribeUser each, nothing to write
    (the latency-bound case: what a target costs is one call's round trip)."""
    seed = {"Servers": [{"ServerId": SERVER, "DirectoryListingOptimization": "ENABLED",
                         "GenerateUsers": [{"Count": n, "Prefix": "chroot", "HomeDirectoryType": "LOGICAL",
                                            "HomeDirectory": ROOT + "/${UserName}"}]}]}
    expected = {"Drifted": 0, "Chrooted": n, "NeedsAttention": 0, "Exempt": 0}
    pages = -(-n // 1000)
    needed = {"ListUsers": pages, "DescribeUser": n, "UpdateUser": 0}
    return seed, [], expected, needed, dict(needed)


def fleet(n, kind="mixed"):
    if kind == "logical":
        return logical_fleet(n)
    exempt = max(1, n // 1000)
    drift = n // 2
    chrooted = n * 3 // 10
    wrong = n - drift - chrooted - exempt
    specs = [
        {"Count": drift, "Prefix": "drift", "HomeDirectory": ROOT + "/${UserName}"},
        {"Count": chrooted, "Prefix": "chroot", "HomeDirectoryType": "LOGICAL",
         "HomeDirectory": ROOT + "/${UserName}"},
        {"Count": wrong, "Prefix": "wrong", "HomeDirectoryType": "LOGICAL",
         "HomeDirectory": "/acme-other/${UserName}"},
        {"Count": exempt, "Prefix": "admin", "HomeDirectory": "/"},
    ]
    width = len(str(exempt))
    exempt_names = [f"admin{i:0{width}d}" for i in range(1, exempt + 1)]
    seed = {"Servers": [{"ServerId": SERVER, "DirectoryListingOptimization": "ENABLED",
                         "GenerateUsers": specs}]}
    expected = {"Drifted": drift, "Chrooted": chrooted, "NeedsAttention": wrong,
                "Exempt": exempt}
    pages = -(-n // 1000)
    # The boto3 reference writes from its listing; transfer-chroot reads a drifted user
    # again before writing it (a reconcile).
    reference = {"ListUsers": pages, "DescribeUser": chrooted + wrong, "UpdateUser": drift}
    needed = dict(reference, DescribeUser=chrooted + wrong + drift)
    return seed, exempt_names, expected, needed, reference


def environment(exempt_names, concurrency=None, max_rps=None):
    env = dict(os.environ)
    env.update({
        "ALLOWED_SERVER_IDS": SERVER, "HOME_ROOTS": ROOT,
        "HOME_TEMPLATE": ROOT + "/${UserName}", "EXEMPT_USERS": ",".join(exempt_names),
        "CHECK_HOME_FOLDERS": "false", "DRY_RUN": "false",
        # As template.yaml sets them.
        "AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard",
    })
    for k in ("COMMAND_QUEUE_URL", "GROUP_PROFILES", "DEFAULT_SERVER_ID", "ALLOWED_ROLE_ARNS",
              "AUDIT_CONCURRENCY", "AUDIT_MAX_RPS"):
        env.pop(k, None)
    if concurrency:
        env["AUDIT_CONCURRENCY"] = str(concurrency)
    if max_rps:
        env["AUDIT_MAX_RPS"] = str(max_rps)
    return env


class Emulator:
    def __init__(self, binary, deadline_ms, log):
        self.proc, self.address = spawn_server(
            [binary, "--deadline-ms", str(deadline_ms)], log, "the Runtime API emulator")
        self.conn = http.client.HTTPConnection(self.address, timeout=600)

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=body)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: {resp.status} {data[:2000]!r}")
        return data

    def close(self):
        self.conn.close()
        stop(self.proc)


# Targets each invocation of the last run looked at.
PER_INVOCATION = []


def run_function(args, standin, env, log, fix, rss=False):
    """One audit run to completion: (report totals, invocations, seconds, VmHWM KiB,
    CPU seconds of the function process)."""
    api = Emulator(args.emulator, args.deadline_ms, log)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address, AWS_ENDPOINT_URL_TRANSFER=standin.endpoint)
    proc = subprocess.Popen([args.function], env=env, stdout=log, stderr=log)
    try:
        api.call("GET", "/_emulator/ready")
        event = {"Action": "Audit", "Fix": fix}
        totals = {}
        invocations = 0
        started = time.monotonic()
        while event is not None:
            report = json.loads(api.call("POST", "/_emulator/invoke", json.dumps(event)))
            invocations += 1
            c = report.get("Counts", {})
            PER_INVOCATION.append(sum(c.get(k, 0) for k in ("Chrooted", "Drifted", "NeedsAttention", "Exempt")))
            if report.get("Status") != "Audited":
                raise RuntimeError(f"audit failed: {json.dumps(report)[:2000]}")
            for k, v in report["Counts"].items():
                totals[k] = totals.get(k, 0) + v
            event = report.get("Continuation")
        seconds = time.monotonic() - started
        hwm = vm_hwm_kib(proc.pid) if rss else None
        return totals, invocations, seconds, hwm, cpu_ns(proc.pid) / 1e9
    finally:
        stop(proc)
        api.close()


def tally(standin):
    requests = standin.control("GET", "requests")
    ops = {}
    throttled = 0
    for r in requests:
        ops[r["Operation"]] = ops.get(r["Operation"], 0) + 1
        throttled += bool(r.get("Throttled"))
    return {"Requests": len(requests), "ByOperation": ops, "Throttled": throttled}


def burst_of(args):
    """The bucket's size: "R", "R/10" or a number of requests."""
    b = str(args.burst).strip()
    if b == "R":
        return int(args.rate)
    if b.startswith("R/"):
        return max(1, int(args.rate / float(b[2:])))
    return max(1, int(b))


def limited_standin(args, seed_path, log):
    """A fresh stand-in with the case's latency on every call and, when --rate is set,
    one token bucket for the whole API."""
    standin = StandIn(args.standin, seed_path, log)
    standin.set_latency(args.latency_ms)
    if args.rate > 0:
        standin.control("POST", "rate-limits",
                        [{"Operation": "*", "RequestsPerSecond": args.rate, "Burst": burst_of(args)}])
    return standin


def left_drifted(args, standin, env, log):
    """Lifts the limit and the latency and audits without Fix: what is left (counts)."""
    standin.set_latency(0)
    standin.control("POST", "rate-limits", [])
    totals = run_function(args, standin, env, log, fix=False)[0]
    return totals


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=400.0)
    p.add_argument("--deadline-ms", type=int, default=40_000)
    p.add_argument("--function", required=True)
    p.add_argument("--standin", required=True)
    p.add_argument("--emulator", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--burst", default="R", help='the bucket: "R", "R/10" or a number')
    p.add_argument("--latency-ms", type=int, default=0, help="added to every Transfer call")
    p.add_argument("--fleet", choices=["mixed", "logical"], default="mixed")
    p.add_argument("--concurrency", type=int, default=None, help="AUDIT_CONCURRENCY (default: the function's)")
    p.add_argument("--max-rps", type=float, default=None, help="AUDIT_MAX_RPS")
    p.add_argument("--threads", type=int, default=1, help="the boto3 reference's worker threads")
    p.add_argument("--skip-small", action="store_true", help="no 100-user RSS run")
    p.add_argument("--case", default="audit", help="the result's file name: OUT/<case>.json")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, f"{args.case}.log"), "w")
    result = {"users": args.users, "rate": args.rate, "deadline_ms": args.deadline_ms,
              "burst": burst_of(args) if args.rate > 0 else None, "burst_spec": args.burst,
              "latency_ms": args.latency_ms, "fleet": args.fleet, "concurrency": args.concurrency,
              "max_rps": args.max_rps, "threads": args.threads, "case": args.case}

    seed, exempt, expected, needed, reference = fleet(args.users, args.fleet)
    seed_path = os.path.join(args.out, f"seed-audit-{args.fleet}-{args.users}.json")
    json.dump(seed, open(seed_path, "w"))
    env = environment(exempt, args.concurrency, args.max_rps)
    calls_needed = sum(needed.values()) + 1  # + DescribeServer, once per environment
    reference_needed = sum(reference.values())
    result.update(expected=expected, needed=needed, calls_needed=calls_needed,
                  reference_needed=reference, reference_calls_needed=reference_needed)
    if args.rate > 0:
        result.update(floor_seconds=calls_needed / args.rate,
                      reference_floor_seconds=reference_needed / args.rate)

    print(f"transfer-chroot [{args.case}]: {args.users} {args.fleet} users, rate {args.rate:g}/s "
          f"burst {args.burst}, latency {args.latency_ms} ms", file=sys.stderr)
    standin = limited_standin(args, seed_path, log)
    try:
        PER_INVOCATION.clear()
        totals, invocations, seconds, hwm, cpu = run_function(args, standin, env, log, fix=True, rss=True)
        per_invocation = sorted(PER_INVOCATION)
        calls = tally(standin)
        standin.control("POST", "clear")
        left = left_drifted(args, standin, env, log)
    finally:
        standin.close()
    path = os.path.join(args.out, f"{args.case}.json")
    save = lambda: json.dump(result, open(path, "w"), indent=2)
    result["rust"] = {"counts": totals, "invocations": invocations, "seconds": seconds, "cpu_seconds": cpu,
                      "peak_rss_kib": hwm, "calls": calls, "left": left,
                      "targets_per_invocation": {"min": per_invocation[0],
                                                 "median": per_invocation[len(per_invocation) // 2]}}
    save()

    if not args.skip_reference:
        print("boto3 reference: same fleet, same rate", file=sys.stderr)
        standin = limited_standin(args, seed_path, log)
        try:
            env_py = dict(env, AWS_ENDPOINT_URL_TRANSFER=standin.endpoint)
            env_py["REFERENCE_THREADS"] = str(args.threads)
            out = subprocess.run([args.python, args.reference, SERVER], env=env_py,
                                 stdout=subprocess.PIPE, stderr=log, text=True, check=True)
            ref = json.loads(out.stdout.strip().splitlines()[-1])
            calls = tally(standin)
            standin.control("POST", "clear")
            left = left_drifted(args, standin, env, log)
        finally:
            standin.close()
        result["python"] = {"counts": ref["Counts"], "fixed": ref["Fixed"], "failed": ref["Failed"],
                            "seconds": ref["Seconds"], "peak_rss_kib": ref["PeakRssKiB"],
                            "cpu_seconds": ref["CpuSeconds"],
                            "calls": calls, "left": left}
        save()

    if not args.skip_small:
        # The same audit on 100 users: peak RSS against the large fleet's.
        small_seed, small_exempt, _, _, _ = fleet(100, args.fleet)
        small_path = os.path.join(args.out, f"seed-audit-{args.fleet}-100.json")
        json.dump(small_seed, open(small_path, "w"))
        standin = StandIn(args.standin, small_path, log)
        try:
            small_env = environment(small_exempt, args.concurrency, args.max_rps)
            totals, _, _, hwm, _ = run_function(args, standin, small_env, log, fix=True, rss=True)
        finally:
            standin.close()
        result["rust_100"] = {"counts": totals, "peak_rss_kib": hwm}

    json.dump(result, open(path, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
