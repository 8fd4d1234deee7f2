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
user (the reconcile's read) and one DescribeServer per execution environment.

--directory: the same fleet (same names, kinds and counts) with IAM Identity Center's
Identity Store on the stand-in (its `Directory` seed, every Transfer user a directory
user, IDENTITY_STORE_ID and AWS_ENDPOINT_URL_IDENTITYSTORE pointing at it) and
GROUP_PROFILES for two groups, whose members are the LOGICAL chrooted users:
  sftp-engineering  10 % of users: chroot users 1 .. N/10      (priority 10)
  sftp-finance      20 % of users: chroot users N/10+1 .. 3N/10 (priority 20)
each profile's home /acme-sftp/groups/<group>/${UserName} (HOME_ROOTS adds
/acme-sftp/groups). Nine in ten members already live there (Chrooted); the first tenth
of each group still has the template's home (Drifted by profile: one write each). No
Default profile, so non-members are judged exactly as without the directory. The
stand-in limits `identitystore:*` (every Identity Store operation together, IAM Identity
Center's collective limit) to 20 requests/s, burst 20, besides Transfer's R. The run
reads the directory first (GetGroupId per profiled group, its members 100 a page, then
every user 100 a page), once, in the execution environment its continuations share;
its floor adds those calls / 20. No boto3 reference (it has no directory). Standard
library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runtime_emulator import StandIn, cpu_ns, spawn_server, stop, vm_hwm_kib  # noqa: E402
import http.client  # noqa: E402

SERVER = "s-0123456789abcdef0"
ROOT = "/acme-sftp/home"
GROUPS_ROOT = "/acme-sftp/groups"
STORE = "d-9067a1b2c3"
# IAM Identity Center's collective limit, which the function paces itself to by default.
DIRECTORY_RPS = 20.0
DIRECTORY_PAGE = 100


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


def width(n):
    return len(str(n))


def directory_fleet(n):
    """The mixed fleet with a directory (see the module documentation): (seed, exempt
    names, expected counts, Transfer calls needed, directory facts)."""
    seed, exempt_names, expected, needed, _ = fleet(n, "mixed")
    specs = seed["Servers"][0]["GenerateUsers"]
    chroot = next(s for s in specs if s["Prefix"] == "chroot")
    c = chroot["Count"]
    eng = n // 10
    fin = c - eng
    eng_moved, fin_moved = eng // 10, fin // 10
    w = width(c)
    logical = {k: chroot[k] for k in ("Prefix", "HomeDirectoryType")}

    def part(start, count, home):
        return dict(logical, Start=start, Count=count, Width=w, HomeDirectory=home)

    homes = {"eng": GROUPS_ROOT + "/engineering/${UserName}",
             "fin": GROUPS_ROOT + "/finance/${UserName}"}
    parts = [
        # Engineering: the first tenth still at the template's home (drifted by profile).
        part(1, eng_moved, ROOT + "/${UserName}"),
        part(1 + eng_moved, eng - eng_moved, homes["eng"]),
        # Finance: likewise.
        part(eng + 1, fin_moved, ROOT + "/${UserName}"),
        part(eng + 1 + fin_moved, fin - fin_moved, homes["fin"]),
    ]
    seed["Servers"][0]["GenerateUsers"] = [s for s in specs if s is not chroot] + \
        [p for p in parts if p["Count"] > 0]
    # Every Transfer user is a directory user of the same name.
    seed["Directory"] = {
        "IdentityStoreId": STORE,
        "GenerateUsers": [{"Prefix": s["Prefix"], "Count": s["Count"]} for s in specs],
        "Groups": [
            {"DisplayName": "sftp-finance",
             "GenerateMembers": [{"Prefix": "chroot", "Start": eng + 1, "Count": fin}]},
            {"DisplayName": "sftp-engineering",
             "GenerateMembers": [{"Prefix": "chroot", "Start": 1, "Count": eng}]},
            # Not profiled: never read.
            {"DisplayName": "staff",
             "GenerateMembers": [{"Prefix": "drift", "Count": n // 2}]},
        ],
    }
    moved = eng_moved + fin_moved
    expected = dict(expected, Chrooted=expected["Chrooted"] - moved,
                    Drifted=expected["Drifted"] + moved)
    # A LOGICAL user drifted by profile: its one describe (the reconcile's read) and a write.
    needed = dict(needed, UpdateUser=needed["UpdateUser"] + moved)
    pages = lambda k: -(-k // DIRECTORY_PAGE)
    directory_needed = {"GetGroupId": 2, "ListGroupMemberships": pages(fin) + pages(eng),
                        "ListUsers": pages(n)}
    profiles = {"Profiles": [
        {"Group": "sftp-finance", "Priority": 20, "HomeDirectory": homes["fin"]},
        {"Group": "sftp-engineering", "Priority": 10, "HomeDirectory": homes["eng"]}]}
    facts = {"identity_store_id": STORE, "users": n, "groups": {"sftp-finance": fin,
             "sftp-engineering": eng, "staff (not profiled)": n // 2},
             "profiled_members": fin + eng, "drifted_by_profile": {"sftp-finance": fin_moved,
             "sftp-engineering": eng_moved}, "needed": directory_needed,
             "calls_needed": sum(directory_needed.values()),
             # The acceptance's bound: (users + profiled members) / 100 + a constant (the
             # profiled groups' GetGroupId, and a short last page of each listing).
             "bound": {"per_page": (n + fin + eng) / DIRECTORY_PAGE, "constant": 2 + 3},
             "group_profiles": profiles}
    return seed, exempt_names, expected, needed, facts


def environment(exempt_names, concurrency=None, max_rps=None, directory=None):
    env = dict(os.environ)
    env.update({
        "ALLOWED_SERVER_IDS": SERVER, "HOME_ROOTS": ROOT,
        "HOME_TEMPLATE": ROOT + "/${UserName}", "EXEMPT_USERS": ",".join(exempt_names),
        "CHECK_HOME_FOLDERS": "false", "DRY_RUN": "false",
        # As template.yaml sets them.
        "AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard",
    })
    for k in ("COMMAND_QUEUE_URL", "GROUP_PROFILES", "DEFAULT_SERVER_ID", "ALLOWED_ROLE_ARNS",
              "AUDIT_CONCURRENCY", "AUDIT_MAX_RPS", "IDENTITY_STORE_ID", "IDENTITY_STORE_MAX_RPS",
              "AWS_ENDPOINT_URL_IDENTITYSTORE"):
        env.pop(k, None)
    if directory:
        env.update({"HOME_ROOTS": ROOT + "," + GROUPS_ROOT,
                    "GROUP_PROFILES": json.dumps(directory["group_profiles"]),
                    "IDENTITY_STORE_ID": directory["identity_store_id"]})
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


# What the last run's final "audit" log line said of the directory (`directory_requests`:
# the Identity Store requests its execution environment sent, retries included).
LAST_AUDIT_LINE = {}


def run_function(args, standin, env, log, fix, rss=False):
    """One audit run to completion: (report totals, invocations, seconds, VmHWM KiB,
    CPU seconds of the function process)."""
    api = Emulator(args.emulator, args.deadline_ms, log)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address, AWS_ENDPOINT_URL_TRANSFER=standin.endpoint)
    if "IDENTITY_STORE_ID" in env:
        env["AWS_ENDPOINT_URL_IDENTITYSTORE"] = standin.endpoint
    out_path = os.path.join(args.out, f"{args.case}-function.log")
    out = open(out_path, "w")
    proc = subprocess.Popen([args.function], env=env, stdout=out, stderr=out)
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
        out.close()
        with open(out_path) as f:
            text = f.read()
        log.write(text)
        log.flush()
        LAST_AUDIT_LINE.clear()
        found = re.findall(r'"directory_requests":\s*(\d+)', text)
        if found:
            LAST_AUDIT_LINE["directory_requests"] = int(found[-1])


DIRECTORY_PREFIX = "identitystore:"


def directory_tally(requests):
    """The Identity Store's requests: by operation, throttled, and their pace (from the
    stand-in's arrival times): the mean rate over the reading, and the most that
    arrived within any one second."""
    ops, throttled, at = {}, 0, []
    for r in requests:
        op = r["Operation"][len(DIRECTORY_PREFIX):]
        ops[op] = ops.get(op, 0) + 1
        throttled += bool(r.get("Throttled")) or r.get("Error") == "ThrottlingException"
        at.append(r.get("AtUs", 0) / 1e6)
    at.sort()
    span = at[-1] - at[0] if len(at) > 1 else 0.0
    most, j = 0, 0
    for i, t in enumerate(at):
        while at[j] <= t - 1.0:
            j += 1
        most = max(most, i - j + 1)
    gaps = sorted(b - a for a, b in zip(at, at[1:]))
    return {"Requests": len(requests), "ByOperation": ops, "Throttled": throttled,
            "Seconds": span,
            "MeanRate": (len(at) - 1) / span if span > 0 else None,
            "MostInOneSecond": most,
            "GapMs": {"min": gaps[0] * 1e3, "median": gaps[len(gaps) // 2] * 1e3,
                      "max": gaps[-1] * 1e3} if gaps else None,
            "ErrorsOtherThanThrottling": sum(
                1 for r in requests if r.get("Error") not in (None, "ThrottlingException"))}


def tally(standin):
    requests = standin.control("GET", "requests")
    ops = {}
    throttled = 0
    directory = []
    for r in requests:
        if r["Operation"].startswith(DIRECTORY_PREFIX):
            directory.append(r)
            continue
        ops[r["Operation"]] = ops.get(r["Operation"], 0) + 1
        throttled += bool(r.get("Throttled"))
    out = {"Requests": len(requests) - len(directory), "ByOperation": ops, "Throttled": throttled}
    if directory:
        out["Directory"] = directory_tally(directory)
    return out


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
    one token bucket for the whole API; with --directory, one for every Identity Store
    operation together at its collective limit."""
    standin = StandIn(args.standin, seed_path, log)
    standin.set_latency(args.latency_ms)
    limits = []
    if args.rate > 0:
        limits.append({"Operation": "*", "RequestsPerSecond": args.rate, "Burst": burst_of(args)})
    if args.directory:
        limits.append({"Operation": "identitystore:*", "RequestsPerSecond": DIRECTORY_RPS,
                       "Burst": int(DIRECTORY_RPS)})
    if limits:
        standin.control("POST", "rate-limits", limits)
    return standin


def left_drifted(args, standin, env, log):
    """Lifts the limit and the latency and audits without Fix: what is left (counts).
    Not measured, so the directory is read at a higher pace."""
    standin.set_latency(0)
    standin.control("POST", "rate-limits", [])
    if "IDENTITY_STORE_ID" in env:
        env = dict(env, IDENTITY_STORE_MAX_RPS="1000")
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
    p.add_argument("--directory", action="store_true",
                   help="with the Identity Store and GROUP_PROFILES (module documentation)")
    args = p.parse_args()
    if args.directory:
        args.skip_reference = True
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, f"{args.case}.log"), "w")
    result = {"users": args.users, "rate": args.rate, "deadline_ms": args.deadline_ms,
              "burst": burst_of(args) if args.rate > 0 else None, "burst_spec": args.burst,
              "latency_ms": args.latency_ms, "fleet": args.fleet, "concurrency": args.concurrency,
              "max_rps": args.max_rps, "threads": args.threads, "case": args.case}

    directory = None
    if args.directory:
        if args.fleet != "mixed":
            p.error("--directory takes the mixed fleet")
        seed, exempt, expected, needed, directory = directory_fleet(args.users)
        reference = dict(needed)
        kind = "directory"
    else:
        seed, exempt, expected, needed, reference = fleet(args.users, args.fleet)
        kind = args.fleet
    seed_path = os.path.join(args.out, f"seed-audit-{kind}-{args.users}.json")
    json.dump(seed, open(seed_path, "w"))
    env = environment(exempt, args.concurrency, args.max_rps, directory)
    calls_needed = sum(needed.values()) + 1  # + DescribeServer, once per environment
    reference_needed = sum(reference.values())
    result.update(expected=expected, needed=needed, calls_needed=calls_needed,
                  reference_needed=reference, reference_calls_needed=reference_needed)
    if args.rate > 0:
        result.update(floor_seconds=calls_needed / args.rate,
                      reference_floor_seconds=reference_needed / args.rate)
    if directory:
        directory["rate"] = DIRECTORY_RPS
        directory["floor_seconds"] = directory["calls_needed"] / DIRECTORY_RPS
        result["directory"] = directory
        if args.rate > 0:
            result["transfer_floor_seconds"] = result["floor_seconds"]
            result["floor_seconds"] += directory["floor_seconds"]

    print(f"transfer-chroot [{args.case}]: {args.users} {kind} users, rate {args.rate:g}/s "
          f"burst {args.burst}, latency {args.latency_ms} ms", file=sys.stderr)
    standin = limited_standin(args, seed_path, log)
    try:
        PER_INVOCATION.clear()
        totals, invocations, seconds, hwm, cpu = run_function(args, standin, env, log, fix=True, rss=True)
        per_invocation = sorted(PER_INVOCATION)
        function_says = dict(LAST_AUDIT_LINE)
        calls = tally(standin)
        standin.control("POST", "clear")
        left = left_drifted(args, standin, env, log)
    finally:
        standin.close()
    path = os.path.join(args.out, f"{args.case}.json")
    save = lambda: json.dump(result, open(path, "w"), indent=2)
    result["rust"] = {"counts": totals, "invocations": invocations, "seconds": seconds, "cpu_seconds": cpu,
                      "peak_rss_kib": hwm, "calls": calls, "left": left,
                      "function_log": function_says,
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
        if args.directory:
            small_seed, small_exempt, _, _, small_directory = directory_fleet(100)
        else:
            small_seed, small_exempt, _, _, _ = fleet(100, args.fleet)
            small_directory = None
        small_path = os.path.join(args.out, f"seed-audit-{kind}-100.json")
        json.dump(small_seed, open(small_path, "w"))
        standin = StandIn(args.standin, small_path, log)
        try:
            small_env = environment(small_exempt, args.concurrency, args.max_rps, small_directory)
            totals, _, _, hwm, _ = run_function(args, standin, small_env, log, fix=True, rss=True)
            small_calls = tally(standin)
        finally:
            standin.close()
        result["rust_100"] = {"counts": totals, "peak_rss_kib": hwm}
        if args.directory:
            result["rust_100"]["directory_calls"] = small_calls.get("Directory", {}).get("ByOperation")

    json.dump(result, open(path, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
