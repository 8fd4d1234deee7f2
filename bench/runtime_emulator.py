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


def spawn_server(argv, log, what):
    """Starts a loopback server that prints "... listening on <address>"; (process, address)."""
    proc = subprocess.Popen(
        argv + ["--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log, text=True,
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        stop(proc)
        raise RuntimeError(f"{what} did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


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
    """A fresh transfer-standin process (same seed every time)."""

    def __init__(self, binary, seed, log):
        # It prints its endpoint: "transfer-standin listening on http://127.0.0.1:<port>".
        self.proc, self.endpoint = spawn_server([binary, "--seed", seed], log, "the stand-in")

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


class Function:
    """The runtime process under test, with its own Runtime API and stand-in."""

    def __init__(self, command, cwd, standin, emulator, log):
        self.api = RuntimeApi(emulator, log)
        env = dict(os.environ)
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        env["AWS_ENDPOINT_URL_TRANSFER"] = standin.endpoint
        self.spawned_ns = now_ns()
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)

    def wait_ready(self):
        return self.api.first_next_ns() - self.spawned_ns

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
        self.out_path = spec["out"]
        self.log = open(spec["log"], "w") if spec.get("log") else subprocess.DEVNULL
        self.out = {
            "name": self.name,
            "command": self.command,
            "runtime_client": spec.get("runtime_client", ""),
        }
        self.cold, self.first, self.cold_rss = [], [], []
        self.standin = self.fn = None
        self.per_event = {}

    def start(self, args):
        self.standin = StandIn(args.standin, args.seed, self.log)
        self.standin.set_latency(args.latency_ms)
        self.fn = Function(self.command, self.cwd, self.standin, args.emulator, self.log)

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
                _, latency, _ = s.fn.api.invoke(events[0][1])
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
                s.out["standin_peak_concurrency"] = s.standin.control("GET", "peak").get("Peak")
        finally:
            for s in subjects:
                s.stop()

    loadavg_after = os.getloadavg()
    for s in subjects:
        out = dict(s.out, **common, loadavg_after=loadavg_after)
        if s.cold:
            out["cold_start_ms"] = [ms(v) for v in s.cold]
            out["first_invocation_ms"] = [ms(v) for v in s.first]
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
             '"out": results file, "log": its stdout/stderr}; several are interleaved',
    )
    m.add_argument("--standin", required=True, help="path to the transfer-standin binary")
    m.add_argument("--emulator", required=True, help="path to the lambda-runtime-api binary")
    m.add_argument("--seed", required=True)
    m.add_argument("--events", nargs="+", required=True, help="event files, driven in turn")
    m.add_argument("--cold-runs", type=int, default=10)
    m.add_argument("--warm", type=int, default=280, help="measured warm invocations per implementation")
    m.add_argument("--latency-ms", type=int, default=0, help="stand-in latency per Transfer call")
    m.add_argument("--pause-ms", type=float, default=1.0, help="idle time before each invocation")
    args = p.parse_args()
    measure(args)


if __name__ == "__main__":
    sys.exit(main())
