"""FALLBACK ONLY: a pure-Python Lambda runtime loop, used by bench/run.sh when the
`awslambdaric` package cannot be installed on this machine (it ships a compiled
extension; where no wheel fits, building it needs a C++ toolchain and libcurl).

It speaks the same Runtime API as awslambdaric (GET .../invocation/next, POST
.../response or .../error, POST .../init/error) over one keep-alive connection, so
the emulator measures the same protocol. When it is used, run.sh and the results say
so: figures from it are not figures "under awslambdaric".

Usage: python runtime_loop.py handler.handler   (cwd = the handler's folder)
"""

import http.client
import importlib
import json
import os
import sys
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")

    def get_remaining_time_in_millis(self):
        import time

        return max(0, self._deadline_ms - int(time.time() * 1000))


def main(spec):
    conn = http.client.HTTPConnection(API)
    sys.path.insert(0, os.getcwd())
    module, _, name = spec.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module), name)
    except Exception as e:  # report a failed cold start as Lambda's RIC does
        body = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__})
        conn.request("POST", BASE + "/init/error", body)
        conn.getresponse().read()
        raise
    while True:
        conn.request("GET", BASE + "/invocation/next")
        resp = conn.getresponse()
        event = json.loads(resp.read())
        ctx = Context(resp.headers)
        try:
            result, kind = json.dumps(handler(event, ctx)), "response"
        except Exception as e:
            kind = "error"
            result = json.dumps({"errorMessage": str(e), "errorType": type(e).__name__,
                                 "stackTrace": traceback.format_exc().splitlines()})
        conn.request("POST", f"{BASE}/invocation/{ctx.aws_request_id}/{kind}", result)
        conn.getresponse().read()


if __name__ == "__main__":
    main(sys.argv[1])
