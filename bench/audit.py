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


def fleet(n):
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


def environment(exempt_names):
    env = dict(os.environ)
    env.update({
        "ALLOWED_SERVER_IDS": SERVER, "HOME_ROOTS": ROOT,
        "HOME_TEMPLATE": ROOT + "/${UserName}", "EXEMPT_USERS": ",".join(exempt_names),
        "CHECK_HOME_FOLDERS": "false", "DRY_RUN": "false",
        # As template.yaml sets them.
        "AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard",
    })
    for k in ("COMMAND_QUEUE_URL", "GROUP_PROFILES", "DEFAULT_SERVER_ID", "ALLOWED_ROLE_ARNS"):
        env.pop(k, None)
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


def limited_standin(args, seed_path, log):
    standin = StandIn(args.standin, seed_path, log)
    standin.control("POST", "rate-limits",
                    [{"Operation": "*", "RequestsPerSecond": args.rate, "Burst": int(args.rate)}])
    return standin


def left_drifted(args, standin, env, log):
    """Lifts the limit and audits without Fix: what is left (counts)."""
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
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "audit.log"), "w")
    result = {"users": args.users, "rate": args.rate, "deadline_ms": args.deadline_ms}

    seed, exempt, expected, needed, reference = fleet(args.users)
    seed_path = os.path.join(args.out, f"seed-audit-{args.users}.json")
    json.dump(seed, open(seed_path, "w"))
    env = environment(exempt)
    calls_needed = sum(needed.values()) + 1  # + DescribeServer, once per environment
    reference_needed = sum(reference.values())
    result.update(expected=expected, needed=needed, calls_needed=calls_needed,
                  floor_seconds=calls_needed / args.rate,
                  reference_needed=reference, reference_calls_needed=reference_needed,
                  reference_floor_seconds=reference_needed / args.rate)

    print(f"transfer-chroot: {args.users} users at {args.rate:g} requests/s", file=sys.stderr)
    standin = limited_standin(args, seed_path, log)
    try:
        totals, invocations, seconds, hwm, cpu = run_function(args, standin, env, log, fix=True, rss=True)
        calls = tally(standin)
        standin.control("POST", "clear")
        left = left_drifted(args, standin, env, log)
    finally:
        standin.close()
    save = lambda: json.dump(result, open(os.path.join(args.out, "audit.json"), "w"), indent=2)
    result["rust"] = {"counts": totals, "invocations": invocations, "seconds": seconds, "cpu_seconds": cpu,
                      "peak_rss_kib": hwm, "calls": calls, "left": left}
    save()

    if not args.skip_reference:
        print("boto3 reference: same fleet, same rate", file=sys.stderr)
        standin = limited_standin(args, seed_path, log)
        try:
            env_py = dict(env, AWS_ENDPOINT_URL_TRANSFER=standin.endpoint)
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

    # The same audit on 100 users: peak RSS against the large fleet's.
    small_seed, small_exempt, _, _, _ = fleet(100)
    small_path = os.path.join(args.out, "seed-audit-100.json")
    json.dump(small_seed, open(small_path, "w"))
    standin = StandIn(args.standin, small_path, log)
    try:
        totals, _, _, hwm, _ = run_function(args, standin, environment(small_exempt), log, fix=True, rss=True)
    finally:
        standin.close()
    result["rust_100"] = {"counts": totals, "peak_rss_kib": hwm}

    path = os.path.join(args.out, "audit.json")
    json.dump(result, open(path, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
