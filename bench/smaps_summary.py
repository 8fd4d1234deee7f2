#!/usr/bin/env python3
"""Where a process's resident memory is: /proc/<pid>/smaps, summed by kind.

  SMAPS_DIR=target/bench/smaps python3 bench/runtime_emulator.py measure ...
  python3 bench/smaps_summary.py target/bench/smaps/*.smaps

Kinds: the executable's code (r-xp), its read-only data and relocations (r--p), its
writable data, shared libraries, and anonymous memory (heap, stacks). A benchmark aid
for docs/PERFORMANCE.md ("Why the RSS target"), not a test.
"""

import os
import sys


def summarise(path):
    kinds = {}
    exe = None
    current = None
    for line in open(path):
        head = line.split()
        if not head:
            continue
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            perms = head[1]
            name = head[5] if len(head) > 5 else ""
            if exe is None and name.startswith("/"):
                exe = name
            if name == exe:
                kind = {"r-xp": "code", "r--p": "read-only data"}.get(perms, "data")
                kind = "exe " + kind
            elif name.startswith("/"):
                kind = "shared libraries"
            else:
                kind = "anonymous " + (name or "(heap, stacks)")
            current = kind
        elif head[0] == "Rss:" and current:
            kinds[current] = kinds.get(current, 0) + int(head[1])
    return kinds


def main():
    for path in sys.argv[1:]:
        kinds = summarise(path)
        total = sum(kinds.values())
        print(f"{os.path.basename(path)}: {total / 1024:.1f} MiB resident")
        for kind, kib in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:32} {kib / 1024:6.2f} MiB")


if __name__ == "__main__":
    main()
