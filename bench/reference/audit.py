"""COMPARISON ONLY -- not part of transfer-chroot.

The fleet audit a team would otherwise write with boto3, used by bench/audit.sh as
the baseline the function's `{"Action": "Audit", "Fix": true}` is measured against
(docs/PERFORMANCE.md, "Fleet audit at the rate limit"). Same job, idiomatically:

  ListUsers (paginator, MaxResults 1000) -> DescribeUser for LOGICAL users only (the
  listing shows a PATH user's home) -> UpdateUser to the chroot
  {"Entry": "/", "Target": <home>} for each drifted user

with botocore's standard retries (mode "standard", 3 attempts: exponential backoff
with jitter and a retry quota), the same classification rules (a PATH home strictly
below a root is drifted; LOGICAL with one "/" mapping below a root is chrooted;
anything else needs attention; EXEMPT_USERS are left alone) and the same
configuration names. A call that still fails after the retries is counted and the
script goes on, as a cron job would.

Run: python audit.py <ServerId>   (AWS_ENDPOINT_URL_TRANSFER points at the stand-in;
REFERENCE_THREADS=N handles each page's users with N threads, default 1).
Prints one JSON line: counts, failures, seconds, CPU seconds, peak RSS (KiB).
"""

import concurrent.futures
import json
import os
import re
import resource
import sys
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

ROOTS = [r.strip().rstrip("/") for r in os.environ["HOME_ROOTS"].split(",") if r.strip()]
EXEMPT = {e.strip() for e in os.environ.get("EXEMPT_USERS", "").split(",") if e.strip()}
SAFE = re.compile(r"^/[A-Za-z0-9._/-]*$")


def below_a_root(path):
    if not path or not SAFE.match(path) or len(path) > 1024:
        return False
    parts = path.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts):
        return False
    return any(path.startswith(root + "/") for root in ROOTS)


def classify(user):
    """(class, chroot target or None)."""
    if user["UserName"] in EXEMPT:
        return "Exempt", None
    if user.get("HomeDirectoryType") == "LOGICAL":
        mappings = user.get("HomeDirectoryMappings") or []
        if len(mappings) == 1:
            m = mappings[0]
            directory = m.get("Type", "DIRECTORY") == "DIRECTORY"
            if m.get("Entry") == "/" and directory and below_a_root(m.get("Target")):
                return "Chrooted", None
        return "NeedsAttention", None
    home = user.get("HomeDirectory")
    if below_a_root(home):
        return "Drifted", home
    return "NeedsAttention", None


def main():
    server = sys.argv[1]
    # REFERENCE_THREADS > 1: each page's users handled by that many threads, one client
    # shared (boto3 clients are thread-safe), as a team in a hurry would write it.
    threads = int(os.environ.get("REFERENCE_THREADS", "1"))
    client = boto3.client(
        "transfer",
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=max(10, threads),
        ),
    )
    counts = {"Chrooted": 0, "Drifted": 0, "NeedsAttention": 0, "Exempt": 0}
    tally = {"fixed": 0, "failed": 0}
    lock = threading.Lock()

    def handle(listed):
        user = listed
        try:
            if listed.get("HomeDirectoryType") == "LOGICAL" and listed["UserName"] not in EXEMPT:
                user = client.describe_user(ServerId=server, UserName=listed["UserName"])["User"]
            klass, home = classify(user)
            with lock:
                counts[klass] += 1
            if home is not None:
                client.update_user(
                    ServerId=server,
                    UserName=user["UserName"],
                    HomeDirectoryType="LOGICAL",
                    HomeDirectoryMappings=[{"Entry": "/", "Target": home}],
                )
                with lock:
                    tally["fixed"] += 1
        except botocore.exceptions.ClientError as e:
            with lock:
                tally["failed"] += 1
            print(f"{listed['UserName']}: {e.response['Error']['Code']}", file=sys.stderr)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        for page in client.get_paginator("list_users").paginate(
            ServerId=server, PaginationConfig={"PageSize": 1000}
        ):
            list(pool.map(handle, page["Users"]))
    fixed, failed = tally["fixed"], tally["failed"]
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "CpuSeconds": usage.ru_utime + usage.ru_stime,
        "Counts": counts, "Fixed": fixed, "Failed": failed, "Seconds": elapsed,
        "PeakRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
