#!/usr/bin/env bash
# The audit's pipeline benchmark (docs/PERFORMANCE.md, "The audit's pipeline"): the
# cases of bench/audit.sh side by side, then one table (target/bench/matrix.md).
#
#   bash bench/audit-matrix.sh             # every case: about 25 minutes on 2 cores
#   CASES="r300-b10 lat100" bash bench/audit-matrix.sh
#
# Rate-limited cases: the mixed fleet (half drifted, fixed in place), 5 s invocations
# chained by Continuation, one token bucket for the whole API of R requests/s and a
# burst of R, R/10 or 1; the figure is the chained invocations' total time against
# calls needed / R. Latency cases: every user LOGICAL and chrooted (one describe each),
# no limit, 2.5 s invocations (Lambda's default timeout is 3 s); the figure is targets
# a second and per invocation. The boto3 reference runs where the table shows it: one
# thread at a rate limit (as the plain script), ten threads at a latency.
# A benchmark, never a test: not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

# name: the knobs bench/audit.sh reads.
declare -A CASE=(
  [r300-bR]="USERS=6000 RATE=300 BURST=R"
  [r300-b10]="USERS=6000 RATE=300 BURST=R/10"
  [r300-b1]="USERS=6000 RATE=300 BURST=1 SKIP_REFERENCE=1"
  [r300-b10-c4]="USERS=6000 RATE=300 BURST=R/10 CONCURRENCY=4 SKIP_REFERENCE=1"
  [r300-b10-c16]="USERS=6000 RATE=300 BURST=R/10 CONCURRENCY=16 SKIP_REFERENCE=1"
  [r2000-bR]="USERS=40000 RATE=2000 BURST=R"
  [r2000-b10]="USERS=40000 RATE=2000 BURST=R/10"
  [r2000-b1]="USERS=40000 RATE=2000 BURST=1 SKIP_REFERENCE=1"
  [lat100]="USERS=2000 FLEET=logical RATE=0 LATENCY_MS=100 DEADLINE_MS=2500 THREADS=10"
  [lat100-c4]="USERS=2000 FLEET=logical RATE=0 LATENCY_MS=100 DEADLINE_MS=2500 CONCURRENCY=4 SKIP_REFERENCE=1"
  [lat100-c16]="USERS=2000 FLEET=logical RATE=0 LATENCY_MS=100 DEADLINE_MS=2500 CONCURRENCY=16 SKIP_REFERENCE=1"
  [lat20]="USERS=6000 FLEET=logical RATE=0 LATENCY_MS=20 DEADLINE_MS=2500 THREADS=10"
  [lat0]="USERS=6000 FLEET=logical RATE=0 LATENCY_MS=0 DEADLINE_MS=2500 SKIP_REFERENCE=1"
  [rss100k]="USERS=100000 RATE=2000 BURST=R/10 SKIP_REFERENCE=1"
)
ORDER="r300-bR r300-b10 r300-b1 r300-b10-c4 r300-b10-c16 r2000-bR r2000-b10 r2000-b1 lat100 lat100-c4 lat100-c16 lat20 lat0 rss100k"
for name in ${CASES:-$ORDER}; do
  knobs=${CASE[$name]:?"unknown case $name (one of: $ORDER)"}
  echo "== $name: $knobs" >&2
  # Every case but the 100,000-user one skips the 100-user RSS run.
  small=SKIP_SMALL=1
  [ "$name" = rss100k ] && small=
  deadline=$(echo "$knobs" | grep -o "DEADLINE_MS=[0-9]*" | cut -d= -f2 || true)
  env $knobs $small DEADLINE_MS="${deadline:-5000}" CASE="$name" OUT="$OUT" bash bench/audit.sh >/dev/null
done
files=()
for name in ${CASES:-$ORDER}; do files+=("$OUT/$name.json"); done
python3 bench/audit_matrix_report.py "${files[@]}" | tee "$OUT/matrix.md"
