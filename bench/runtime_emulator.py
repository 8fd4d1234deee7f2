#!/usr/bin/env python3
"""The benchmark driver, around a Lambda Runtime API emulator on 127.0.0.1.

The emulator itself is compiled (`lambda-runtime-api`, standin/src/bin/
lambda-runtime-api.rs) and speaks the part of the Runtime API (2018-06-01) a runtime
client uses:

  GET  /2018-06-01/runtime/invocation/next          -> the next event, with the
       Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn and
       -Trace-Id headers (long poll: blocks until the driver hands out an event)
  POST /2018-06-01/runtime/invocation/<id>/response -> the handler's result
  POST /2018-06-01/runtime/invocation/<id>/error    -> a handler error
  POST /2018-06-01/runtime/init/error               -> a failed cold start

It takes the timestamps itself, so nothing this driver does is inside a measured span:
  - cold start: process spawn (here, CLOCK_MONOTONIC) -> its first GET /next (there,
    the same clock);
  - per invocation: event handed out (/next answered) -> result received (POST body
    read): the span Lambda bills as the function's duration;
  - CPU time per invocation: the runtime process's own (all threads, from
    /proc/<pid>/task/*/schedstat), from before the event to after its reply and the
    request for the next one. Unlike latency it leaves out the machine's wake-up and
    scheduling delays and the stand-in's work: it is what the function itself spends.

`measure` spawns the function under test (any command: the Rust bootstrap, or
`python -m awslambdaric handler.handler`) with AWS_LAMBDA_RUNTIME_API pointing at its
own emulator, against a fresh Transfer stand-in (`transfer-standin --listen ...
--seed ...`) per process, so every target starts from the same state. It drives the
same events, reads what the stand-in saw after each invocation (GET
/_standin/requests), and the process's peak RSS (VmHWM in /proc/<pid>/status).
Results go to a JSON file; bench/report.py compares two of them.

Events are files: any source's event (direct command, EventBridge, SQS batch, API
Gateway, CloudFormation) plugs in as a file, nothing here is specific to one.

`--tls` puts the stand-in's TLS listener (a throw-away CA) between the function and
Transfer, the function trusting the system's roots plus that CA (`AWS_CA_BUNDLE`);
`--cpu-share S` gives each runtime, once its init is done, S of one CPU (a cgroup CFS
quota, pinned to one CPU), as Lambda gives an invocation memory / 1769 MB of a vCPU.
The first event after each cold start is timed on its own (latency and CPU).

Standard library only, so it runs before and outside the venv.
"""

import argparse
import http.client
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:transfer-chroot-bench"
READS = {"DescribeUser", "DescribeAccess"}
WRITES = {"UpdateUser", "UpdateAccess"}


def now_ns():
    # CLOCK_MONOTONIC: the clock lambda-runtime-api reports the first /next on.
    return time.monotonic_ns()


def spawn_server(argv, log, what, lines=1):
    """Starts a loopback server that prints "... listening on <address>" (`lines` such
    lines); (process, address, or a list of addresses when lines > 1)."""
    proc = subprocess.Popen(
        argv + ["--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log, text=True,
    )
    addresses = []
    for _ in range(lines):
        line = proc.stdout.readline()
        if "listening on" not in line:
            stop(proc)
            raise RuntimeError(f"{what} did not start: {line!r}")
        addresses.append(line.rsplit(" ", 1)[1].strip())
    return proc, addresses[0] if lines == 1 else addresses


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RuntimeApi:
    """The Runtime API for one runtime process: a `lambda-runtime-api` process.

    The emulator is compiled (standin/src/bin/lambda-runtime-api.rs) and takes the
    timestamps itself, so this driver's own overhead falls outside every measured span.
    """

    def __init__(self, binary, log):
        self.proc, self.address = spawn_server([binary], log, "the Runtime API emulator")
        self.conn = http.client.HTTPConnection(self.address, timeout=90)

    def _call(self, method, path, body=None):
        self.conn.request(method, path, body=body)
        resp = self.conn.getresponse()
        return resp, resp.read()

    def first_next_ns(self):
        """Waits for the runtime's first GET /next; its CLOCK_MONOTONIC time (ns)."""
        resp, body = self._call("GET", "/_emulator/ready")
        if resp.status != 200:
            raise RuntimeError(f"cold start failed ({resp.status}): {body[:2000]!r}")
        return json.loads(body)["FirstNextMonotonicNs"]

    def invoke(self, payload):
        """Hands out one event and waits for its result: (kind, latency_ns, result)."""
        resp, body = self._call("POST", "/_emulator/invoke", payload)
        if resp.status != 200:
            raise RuntimeError(f"invocation failed ({resp.status}): {body[:2000]!r}")
        kind = resp.getheader("X-Emulator-Kind")
        latency = int(resp.getheader("X-Emulator-Latency-Ns"))
        try:
            result = json.loads(body) if body else None
        except ValueError:
            result = body.decode(errors="replace")
        return kind, latency, result

    def close(self):
        self.conn.close()
        stop(self.proc)


class StandIn:
    """A fresh transfer-standin process (same seed every time).

    With `tls_dir`, it also listens over TLS with a throw-away CA written to
    tls_dir/ca.pem; the function under test then talks to `tls_endpoint` and trusts
    tls_dir/bundle.pem: `ca_base` (the system's roots, so the client loads a trust store
    of the usual size, as it would in production) followed by that CA, as a
    TLS-inspecting proxy's bundle is made.
    """

    def __init__(self, binary, seed, log, tls_dir=None, ca_base=None):
        # It prints its endpoint: "transfer-standin listening on http://127.0.0.1:<port>",
        # then, with TLS, "transfer-standin TLS listening on https://127.0.0.1:<port>".
        argv = [binary, "--seed", seed]
        self.tls_endpoint = self.bundle = None
        if tls_dir:
            os.makedirs(tls_dir, exist_ok=True)
            argv += ["--tls-listen", "127.0.0.1:0", "--tls-cert-out", tls_dir]
            self.proc, (self.endpoint, self.tls_endpoint) = spawn_server(
                argv, log, "the stand-in", lines=2)
            self.bundle = os.path.join(tls_dir, "bundle.pem")
            with open(self.bundle, "wb") as out:
                if ca_base:
                    with open(ca_base, "rb") as f:
                        out.write(f.read().rstrip(b"\n") + b"\n")
                with open(os.path.join(tls_dir, "ca.pem"), "rb") as f:
                    out.write(f.read())
        else:
            self.proc, self.endpoint = spawn_server(argv, log, "the stand-in")

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + "/_standin/" + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def set_latency(self, ms):
        self.control("POST", "faults", {"LatencyMs": ms, "Rules": []})

    def close(self):
        stop(self.proc)


def vm_hwm_kib(pid):
    """Peak resident set size of a live process, from /proc (KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def cpu_ns(pid):
    """CPU time a live process has used so far, all threads (ns, from schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


class CpuLimit:
    """A CPU share for one runtime process after its init, as Lambda gives an
    invocation (memory / 1769 MB of a vCPU) while init runs at full speed: a cgroup of
    its own with a CFS bandwidth quota (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us`),
    and the process pinned to one CPU (sched_setaffinity on every thread, as `taskset`).
    Needs a writable cgroup file system (root)."""

    def __init__(self, name, share, period_us, cpu):
        self.share, self.period_us, self.cpu = share, period_us, cpu
        quota = max(1000, round(share * period_us))  # the kernel's minimum quota is 1 ms
        tag = f"transfer-bench-{name}-{os.getpid()}"
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # v2
            self.path = f"/sys/fs/cgroup/{tag}"
            os.makedirs(self.path, exist_ok=True)
            with open(f"{self.path}/cpu.max", "w") as f:
                f.write(f"{quota} {period_us}")
        else:  # v1
            self.path = f"/sys/fs/cgroup/cpu/{tag}"
            os.makedirs(self.path, exist_ok=True)
            with open(f"{self.path}/cpu.cfs_period_us", "w") as f:
                f.write(str(period_us))
            with open(f"{self.path}/cpu.cfs_quota_us", "w") as f:
                f.write(str(quota))
        self.quota_us = quota

    def apply(self, pid):
        with open(f"{self.path}/cgroup.procs", "w") as f:
            f.write(str(pid))  # moves every thread of the process
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.sched_setaffinity(int(tid), {self.cpu})
            except (ProcessLookupError, OSError):
                pass  # a thread that just ended

    def throttled_ns(self):
        with open(f"{self.path}/cpu.stat") as f:
            for line in f:
                k, v = line.split()
                if k in ("throttled_time", "throttled_usec"):
                    return int(v) * (1000 if k == "throttled_usec" else 1)
        return 0

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass

    def describe(self):
        return {"share": self.share, "period_us": self.period_us, "quota_us": self.quota_us,
                "cpu": self.cpu, "cgroup": self.path}


class Function:
    """The runtime process under test, with its own Runtime API and stand-in."""

    def __init__(self, command, cwd, standin, emulator, log, cpu_limit=None, extra_env=None):
        self.api = RuntimeApi(emulator, log)
        self.cpu_limit = cpu_limit
        env = dict(os.environ, **(extra_env or {}))
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        env["AWS_ENDPOINT_URL_TRANSFER"] = standin.endpoint
        if standin.tls_endpoint:
            env["AWS_ENDPOINT_URL_TRANSFER"] = standin.tls_endpoint
            env["AWS_CA_BUNDLE"] = standin.bundle
            # For clients that read the system's store (rustls-native-certs, as the
            # floor's SDK client does): the same bundle in place of the system's file.
            env["SSL_CERT_FILE"] = standin.bundle
        self.spawned_ns = now_ns()
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)

    def wait_ready(self):
        """Cold start (ns); then, with a CPU limit, the process gets its share only."""
        ready = self.api.first_next_ns() - self.spawned_ns
        if self.cpu_limit:
            self.cpu_limit.apply(self.proc.pid)
        return ready

    def close(self):
        stop(self.proc)
        self.api.close()


def summarise(result):
    """The part of a result both implementations must agree on."""
    if not isinstance(result, dict):
        return {"Status": None}
    if "batchItemFailures" in result:  # an SQS reply
        return {"batchItemFailures": len(result["batchItemFailures"])}
    if "statusCode" in result:  # an API Gateway reply
        return {"statusCode": result["statusCode"]}
    error = result.get("Error") or {}
    return {"Status": result.get("Status"), "Code": error.get("Code")}


def count_calls(requests):
    ops = [r.get("Operation") for r in requests]
    return {
        "reads": sum(op in READS for op in ops),
        "writes": sum(op in WRITES for op in ops),
        "other": sum(op not in READS and op not in WRITES for op in ops),
    }


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(ns):
    return ns / 1e6


def load_events(paths):
    events = []
    for p in paths:
        with open(p, "rb") as f:
            raw = f.read()
        json.loads(raw)  # must be JSON
        events.append((os.path.basename(p), raw))
    return events


class Subject:
    """One implementation under test and what was measured of it."""

    def __init__(self, spec):
        self.name = spec["name"]
        self.command = spec["command"]
        self.cwd = spec.get("cwd")
        self.env = spec.get("env") or {}
        self.out_path = spec["out"]
        self.log = open(spec["log"], "w") if spec.get("log") else subprocess.DEVNULL
        self.out = {
            "name": self.name,
            "command": self.command,
            "runtime_client": spec.get("runtime_client", ""),
        }
        self.cold, self.first, self.cold_rss, self.first_cpu = [], [], [], []
        self.cpu_limit = None
        self.standin = self.fn = None
        self.per_event = {}

    def start(self, args):
        tls_dir = os.path.join(os.path.dirname(os.path.abspath(self.out_path)),
                               f"{self.name}-tls") if args.tls else None
        self.standin = StandIn(args.standin, args.seed, self.log, tls_dir, args.ca_base)
        self.standin.set_latency(args.latency_ms)
        if args.cpu_share and not self.cpu_limit:
            self.cpu_limit = CpuLimit(self.name, args.cpu_share, args.cpu_period_us, args.cpu)
        self.fn = Function(self.command, self.cwd, self.standin, args.emulator, self.log,
                           self.cpu_limit, self.env)

    def stop(self):
        if self.fn:
            self.fn.close()
        if self.standin:
            self.standin.close()
        self.fn = self.standin = None


def in_turn(subjects, i):
    """Alternates which implementation goes first, so neither always follows the other."""
    return subjects if i % 2 == 0 else subjects[::-1]


def measure(args):
    events = load_events(args.events)
    subjects = [Subject(json.loads(spec)) for spec in args.impl]
    common = {
        "events": [name for name, _ in events],
        "latency_ms": args.latency_ms,
        "interleaved_with": [s.name for s in subjects],
        # The machine is shared: say how busy it was while measuring.
        "loadavg_before": os.getloadavg(),
    }

    # Cold starts: a fresh process (and stand-in) each time, the implementations in
    # turn; the first event is timed separately as the cold invocation.
    for r in range(args.cold_runs):
        for s in in_turn(subjects, r):
            s.start(args)
            try:
                s.cold.append(s.fn.wait_ready())
                cpu_before = cpu_ns(s.fn.proc.pid)
                _, latency, _ = s.fn.api.invoke(events[0][1])
                time.sleep(args.pause_ms / 1000)
                s.first_cpu.append(cpu_ns(s.fn.proc.pid) - cpu_before)
                s.first.append(latency)
                s.cold_rss.append(vm_hwm_kib(s.fn.proc.pid))
            finally:
                s.stop()

    # Warm invocations: one process per implementation, all running; each event goes
    # to every implementation in turn (alternating who goes first), so a busy moment on
    # the machine lands on both alike. One unmeasured pass first so every code path
    # (and connection) is warm. Between invocations the driver reads the stand-in's
    # request log and clears it, then pauses briefly: its own traffic never overlaps a
    # measured span.
    if args.warm:
        for s in subjects:
            s.per_event = {
                name: {"latency_ms": [], "cpu_ms": [], "calls": [], "answers": []} for name, _ in events
            }
        try:
            for s in subjects:
                s.start(args)
                s.fn.wait_ready()
                for _, payload in events:
                    s.fn.api.invoke(payload)
                s.standin.control("POST", "clear")
            for i in range(args.warm):
                name, payload = events[i % len(events)]
                for s in in_turn(subjects, i // len(events)):
                    cpu_before = cpu_ns(s.fn.proc.pid)
                    kind, latency, result = s.fn.api.invoke(payload)
                    requests = s.standin.control("GET", "requests")
                    s.standin.control("POST", "clear")
                    # The pause lets the runtime finish what follows its reply (asking
                    # for the next event), which is CPU this invocation cost.
                    time.sleep(args.pause_ms / 1000)
                    cpu = cpu_ns(s.fn.proc.pid) - cpu_before
                    rec = s.per_event[name]
                    rec["latency_ms"].append(ms(latency))
                    rec["cpu_ms"].append(ms(cpu))
                    rec["calls"].append(count_calls(requests))
                    answer = summarise(result) if kind == "response" else {"Status": "HandlerError"}
                    if answer not in rec["answers"]:
                        rec["answers"].append(answer)
            for s in subjects:
                s.out["peak_rss_kib"] = vm_hwm_kib(s.fn.proc.pid)
                if os.environ.get("SMAPS_DIR"):
                    # Where the resident memory is, mapping by mapping (the RSS analysis
                    # in docs/PERFORMANCE.md): bench/smaps_summary.py reads these.
                    with open(f"/proc/{s.fn.proc.pid}/smaps") as src, open(
                        os.path.join(os.environ["SMAPS_DIR"], s.name + ".smaps"), "w"
                    ) as dst:
                        dst.write(src.read())
                s.out["standin_peak_concurrency"] = s.standin.control("GET", "peak").get("Peak")
        finally:
            for s in subjects:
                s.stop()
    for s in subjects:
        if s.cpu_limit:
            s.out["cpu_limit"] = s.cpu_limit.describe()
            s.out["cpu_limit"]["throttled_ms"] = ms(s.cpu_limit.throttled_ns())
            s.cpu_limit.remove()

    loadavg_after = os.getloadavg()
    for s in subjects:
        out = dict(s.out, **common, loadavg_after=loadavg_after)
        if s.cold:
            out["cold_start_ms"] = [ms(v) for v in s.cold]
            out["first_invocation_ms"] = [ms(v) for v in s.first]
            out["first_invocation_cpu_ms"] = [ms(v) for v in s.first_cpu]
            out["cold_rss_kib"] = s.cold_rss
        if args.warm:
            all_latency = [v for rec in s.per_event.values() for v in rec["latency_ms"]]
            all_cpu = [v for rec in s.per_event.values() for v in rec["cpu_ms"]]
            out["warm"] = {
                "invocations": len(all_latency),
                "p50_ms": percentile(all_latency, 50),
                "p99_ms": percentile(all_latency, 99),
                "cpu_p50_ms": percentile(all_cpu, 50),
                "cpu_mean_ms": statistics.fmean(all_cpu),
                "per_event": {
                    name: {
                        "n": len(rec["latency_ms"]),
                        "p50_ms": percentile(rec["latency_ms"], 50),
                        "p99_ms": percentile(rec["latency_ms"], 99),
                        "cpu_p50_ms": percentile(rec["cpu_ms"], 50),
                        "max_reads": max(c["reads"] for c in rec["calls"]),
                        "max_writes": max(c["writes"] for c in rec["calls"]),
                        "other_calls": max(c["other"] for c in rec["calls"]),
                        "answers": rec["answers"],
                    }
                    for name, rec in s.per_event.items()
                    if rec["latency_ms"]
                },
            }
        with open(s.out_path, "w") as f:
            json.dump(out, f, indent=2)
        brief = {k: out[k] for k in ("name", "runtime_client")}
        if s.cold:
            brief["cold_start_median_ms"] = round(statistics.median(out["cold_start_ms"]), 2)
            brief["first_invocation_median_ms"] = round(statistics.median(out["first_invocation_ms"]), 2)
        if args.warm:
            brief["warm_p50_ms"] = round(out["warm"]["p50_ms"], 3)
            brief["peak_rss_mib"] = round(out["peak_rss_kib"] / 1024, 1)
        print(json.dumps(brief))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="spawn runtimes, drive events in turn, write results JSON")
    m.add_argument(
        "--impl", action="append", required=True,
        help='an implementation as JSON: {"name", "command": [...], "cwd", "runtime_client", '
             '"out": results file, "log": its stdout/stderr, "env": extra variables}; '
             'several are interleaved',
    )
    m.add_argument("--standin", required=True, help="path to the transfer-standin binary")
    m.add_argument("--emulator", required=True, help="path to the lambda-runtime-api binary")
    m.add_argument("--seed", required=True)
    m.add_argument("--events", nargs="+", required=True, help="event files, driven in turn")
    m.add_argument("--cold-runs", type=int, default=10)
    m.add_argument("--warm", type=int, default=280, help="measured warm invocations per implementation")
    m.add_argument("--latency-ms", type=int, default=0, help="stand-in latency per Transfer call")
    m.add_argument("--pause-ms", type=float, default=1.0, help="idle time before each invocation")
    m.add_argument("--tls", action="store_true",
                   help="the function talks to the stand-in over TLS (a throw-away CA, AWS_CA_BUNDLE)")
    m.add_argument("--ca-base", default=None,
                   help="with --tls: roots put before the stand-in's CA in the bundle (the system's)")
    m.add_argument("--cpu-share", type=float, default=0.0,
                   help="after init, limit each runtime to this share of one CPU (0: no limit); "
                        "128 MB on Lambda is 128/1769 = 0.072")
    m.add_argument("--cpu-period-us", type=int, default=20000, help="CFS period for --cpu-share")
    m.add_argument("--cpu", type=int, default=0, help="the CPU a limited runtime is pinned to")
    args = p.parse_args()
    measure(args)


if __name__ == "__main__":
    sys.exit(main())
