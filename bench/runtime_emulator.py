#!/usr/bin/env python3
"""A minimal AWS Lambda Runtime API emulator on 127.0.0.1, and the benchmark driver.

It speaks the part of the Runtime API (2018-06-01) a runtime client uses:

  GET  /2018-06-01/runtime/invocation/next          -> the next event, with the
       Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn and
       -Trace-Id headers (long poll: blocks until the driver hands out an event)
  POST /2018-06-01/runtime/invocation/<id>/response -> the handler's result
  POST /2018-06-01/runtime/invocation/<id>/error    -> a handler error
  POST /2018-06-01/runtime/init/error               -> a failed cold start

and records, with a monotonic clock:
  - cold start: process spawn -> its first GET /next (ready for the first event);
  - per invocation: event handed out (/next answered) -> result received (POST).

`measure` spawns the function under test (any command: the Rust bootstrap, or
`python -m awslambdaric handler.handler`) with AWS_LAMBDA_RUNTIME_API pointing here,
against a fresh Transfer stand-in (`transfer-standin --listen ... --seed ...`) per
process, so every target starts from the same state. It drives the same events,
reads what the stand-in saw after each invocation (GET /_standin/requests), and
the process's peak RSS (VmHWM in /proc/<pid>/status). Results go to a JSON file;
bench/report.py compares two of them.

Events are files: any source's event (direct command, EventBridge, SQS batch, API
Gateway, CloudFormation) plugs in as a file, nothing here is specific to one.

Standard library only, so it runs before and outside the venv.
"""

import argparse
import json
import math
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:transfer-chroot-bench"
READS = {"DescribeUser", "DescribeAccess"}
WRITES = {"UpdateUser", "UpdateAccess"}


def now_ns():
    return time.perf_counter_ns()


class Session:
    """One runtime process's view of the Runtime API."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.first_next = threading.Event()
        self.first_next_ns = None
        self.init_error = None
        self.closed = False
        self.pending = {}  # request id -> handed-out timestamp


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real Runtime API

    def log_message(self, *args):  # quiet
        pass

    @property
    def session(self):
        return self.server.session

    def setup(self):
        super().setup()
        # Without this, a reply written as headers then body meets the client's delayed
        # ACK (Nagle): a 40 ms stall that some runtime clients suffer and others do not.
        # The emulator must not tax one implementation; the real Runtime API does not.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # Status line, headers and body in one write (one segment where it fits).
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()
        self.wfile.flush()

    def do_GET(self):
        s = self.session
        if self.path != PREFIX + "/invocation/next":
            return self._reply(404, b'{"errorType":"NotFound"}')
        if s.first_next_ns is None:
            s.first_next_ns = now_ns()
            s.first_next.set()
        while True:
            if s.closed:
                # Lambda would freeze the process here; we are shutting it down.
                self.close_connection = True
                return self._reply(410, b"")
            try:
                request_id, body = s.events.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        deadline_ms = int(time.time() * 1000) + 30_000
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        s.pending[request_id] = now_ns()
        self._reply(200, body, headers)

    def do_POST(self):
        s = self.session
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = now_ns()
        path = self.path
        if path == PREFIX + "/init/error":
            s.init_error = body.decode(errors="replace")
            s.results.put(("init-error", None, received, body))
            return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
        if path.startswith(PREFIX + "/invocation/"):
            rest = path[len(PREFIX + "/invocation/"):]
            request_id, _, kind = rest.partition("/")
            if kind in ("response", "error"):
                s.results.put((kind, request_id, received, body))
                return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
        self._reply(404, b'{"errorType":"NotFound"}')


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A runtime stopped at the end of a run drops its connection mid-poll: expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class RuntimeApi:
    """A Runtime API server for one runtime process."""

    def __init__(self):
        self.session = Session()
        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.session = self.session
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def invoke(self, payload, timeout=60):
        """Hands out one event and waits for its result: (kind, latency_ns, result)."""
        request_id = str(uuid.uuid4())
        self.session.events.put((request_id, payload))
        while True:
            kind, rid, received, body = self.session.results.get(timeout=timeout)
            if kind == "init-error":
                raise RuntimeError(f"cold start failed: {body[:2000]!r}")
            if rid == request_id:
                break
        handed = self.session.pending.pop(request_id)
        try:
            result = json.loads(body) if body else None
        except ValueError:
            result = body.decode(errors="replace")
        return kind, received - handed, result

    def close(self):
        self.session.closed = True
        self.server.shutdown()
        self.server.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn:
    """A fresh transfer-standin process (same seed every time)."""

    def __init__(self, binary, seed, log):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--seed", seed],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        line = self.proc.stdout.readline()  # "transfer-standin listening on ..."
        if "listening" not in line:
            raise RuntimeError(f"stand-in did not start: {line!r}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + "/_standin/" + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def set_latency(self, ms):
        self.control("POST", "faults", {"LatencyMs": ms, "Rules": []})

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def vm_hwm_kib(pid):
    """Peak resident set size of a live process, from /proc (KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class Function:
    """The runtime process under test, with its own Runtime API and stand-in."""

    def __init__(self, command, cwd, standin, log):
        self.api = RuntimeApi()
        env = dict(os.environ)
        env["AWS_LAMBDA_RUNTIME_API"] = self.api.address
        env["AWS_ENDPOINT_URL_TRANSFER"] = standin.endpoint
        self.spawned_ns = now_ns()
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)

    def wait_ready(self, timeout=60):
        if not self.api.session.first_next.wait(timeout):
            raise RuntimeError("the runtime never asked for an event")
        return self.api.session.first_next_ns - self.spawned_ns

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
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


def measure(args):
    events = load_events(args.events)
    log = open(args.log, "a")
    out = {
        "name": args.name,
        "command": args.command,
        "runtime_client": args.runtime_client,
        "events": [name for name, _ in events],
        "latency_ms": args.latency_ms,
        # The machine is shared: say how busy it was while measuring.
        "loadavg_before": os.getloadavg(),
    }

    # Cold starts: a fresh process (and stand-in) each time; the first event is
    # timed separately as the cold invocation.
    cold, first, cold_rss = [], [], []
    for _ in range(args.cold_runs):
        standin = StandIn(args.standin, args.seed, log)
        fn = Function(args.command, args.cwd, standin, log)
        try:
            cold.append(fn.wait_ready())
            _, latency, _ = fn.api.invoke(events[0][1])
            first.append(latency)
            cold_rss.append(vm_hwm_kib(fn.proc.pid))
        finally:
            fn.close()
            standin.close()
    if cold:
        out["cold_start_ms"] = [ms(v) for v in cold]
        out["first_invocation_ms"] = [ms(v) for v in first]
        out["cold_rss_kib"] = cold_rss

    # Warm invocations: one process, the events in turn. One unmeasured pass first
    # so every code path (and connection) is warm.
    if args.warm:
        standin = StandIn(args.standin, args.seed, log)
        standin.set_latency(args.latency_ms)
        fn = Function(args.command, args.cwd, standin, log)
        per_event = {name: {"latency_ms": [], "calls": [], "answers": []} for name, _ in events}
        try:
            fn.wait_ready()
            for _, payload in events:
                fn.api.invoke(payload)
            for i in range(args.warm):
                name, payload = events[i % len(events)]
                standin.control("POST", "clear")
                kind, latency, result = fn.api.invoke(payload)
                requests = standin.control("GET", "requests")
                rec = per_event[name]
                rec["latency_ms"].append(ms(latency))
                rec["calls"].append(count_calls(requests))
                answer = summarise(result) if kind == "response" else {"Status": "HandlerError"}
                if answer not in rec["answers"]:
                    rec["answers"].append(answer)
            out["peak_rss_kib"] = vm_hwm_kib(fn.proc.pid)
            out["standin_peak_concurrency"] = standin.control("GET", "peak").get("Peak")
        finally:
            fn.close()
            standin.close()
        all_latency = [v for rec in per_event.values() for v in rec["latency_ms"]]
        out["warm"] = {
            "invocations": len(all_latency),
            "p50_ms": percentile(all_latency, 50),
            "p99_ms": percentile(all_latency, 99),
            "per_event": {
                name: {
                    "n": len(rec["latency_ms"]),
                    "p50_ms": percentile(rec["latency_ms"], 50),
                    "p99_ms": percentile(rec["latency_ms"], 99),
                    "max_reads": max(c["reads"] for c in rec["calls"]),
                    "max_writes": max(c["writes"] for c in rec["calls"]),
                    "other_calls": max(c["other"] for c in rec["calls"]),
                    "answers": rec["answers"],
                }
                for name, rec in per_event.items()
                if rec["latency_ms"]
            },
        }
    log.close()
    out["loadavg_after"] = os.getloadavg()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    brief = {k: out[k] for k in ("name", "runtime_client")}
    if cold:
        brief["cold_start_median_ms"] = round(statistics.median(out["cold_start_ms"]), 2)
    if args.warm:
        brief["warm_p50_ms"] = round(out["warm"]["p50_ms"], 3)
        brief["peak_rss_mib"] = round(out["peak_rss_kib"] / 1024, 1)
    print(json.dumps(brief))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="spawn a runtime, drive events, write results JSON")
    m.add_argument("--name", required=True)
    m.add_argument("--standin", required=True, help="path to the transfer-standin binary")
    m.add_argument("--seed", required=True)
    m.add_argument("--events", nargs="+", required=True, help="event files, driven in turn")
    m.add_argument("--cold-runs", type=int, default=10)
    m.add_argument("--warm", type=int, default=280, help="measured warm invocations")
    m.add_argument("--latency-ms", type=int, default=0, help="stand-in latency per Transfer call")
    m.add_argument("--cwd", default=None)
    m.add_argument("--runtime-client", default="", help="label: which runtime client ran it")
    m.add_argument("--log", default="/dev/null", help="the runtime's stdout/stderr")
    m.add_argument("--out", required=True)
    m.add_argument("command", nargs=argparse.REMAINDER, help="-- then the runtime command")
    args = p.parse_args()
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        p.error("give the runtime command after --")
    measure(args)


if __name__ == "__main__":
    sys.exit(main())
