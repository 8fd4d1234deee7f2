#!/usr/bin/env bash
# The fleet-audit benchmark (docs/PERFORMANCE.md, "Fleet audit at the rate limit"):
#
#   bash bench/audit.sh            # 100,000 users at 400 requests/s: about 14 minutes
#   USERS=10000 RATE=200 bash bench/audit.sh
#
# transfer-chroot's {"Action": "Audit", "Fix": true} (release binary, compiled Runtime
# API emulator, continuations followed until the run completes) and the boto3 script a
# team would otherwise write (bench/reference/audit.py, botocore standard retries),
# one after the other against fresh stand-ins with the same mixed fleet and the same
# API-wide rate limit; then what each left drifted, and the function's peak RSS at
# 100 users. A benchmark, never a test: not part of scripts/test.sh. Knobs:
# USERS (100000), RATE (400 requests/s; 0: no limit), BURST (R, R/10 or a number; R),
# LATENCY_MS (added to every Transfer call; 0), FLEET (mixed, or logical: every user
# LOGICAL and chrooted, one describe each), DEADLINE_MS (each invocation's; 40000),
# CONCURRENCY (AUDIT_CONCURRENCY), MAX_RPS (AUDIT_MAX_RPS), THREADS (the boto3
# reference's worker threads; 1), SKIP_REFERENCE=1, SKIP_SMALL=1 (no 100-user RSS
# run), CASE (the result's name: OUT/<case>.json), OUT (target/bench), DIRECTORY=1 (the
# same fleet with the Identity Store on the stand-in, at 20 requests/s, and
# GROUP_PROFILES: bench/audit.py's --directory; no boto3 reference; CASE
# audit-directory; its report also in OUT/audit-directory-report.md):
#
#   USERS=10000 DIRECTORY=1 bash bench/audit.sh
#   DIRECTORY=1 bash bench/audit.sh      # 100,000 users at 400 requests/s: about 12 minutes
# bench/audit-matrix.sh runs the table of docs/PERFORMANCE.md "The audit's pipeline".
# transfer-chroot reads each drifted user before writing it (a reconcile), so its calls
# needed are 150,001 on the default fleet, the reference's 100,000: each has its own floor.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check boto3

nice -n 15 cargo build --release --bin bootstrap
nice -n 15 cargo build --release -p transfer-standin
# Copies, so another build into target/ (a worktree sharing it, say) cannot swap a
# binary in the middle of the run.
BIN=$OUT/bin
mkdir -p "$BIN"
source scripts/target-dir.sh
cp "$TARGET_DIR"/release/{bootstrap,transfer-standin,lambda-runtime-api} "$BIN/"

export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIDBENCHMARK AWS_SECRET_ACCESS_KEY=bench-secret
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_LAMBDA_FUNCTION_NAME=transfer-chroot-bench AWS_LAMBDA_FUNCTION_VERSION='$LATEST'
export AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256
export PYTHONDONTWRITEBYTECODE=1
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_TRANSFER

if [ -n "${DIRECTORY:-}" ]; then
  CASE=${CASE:-audit-directory}
else
  CASE=${CASE:-audit}
fi
EXTRA=()
[ -n "${DIRECTORY:-}" ] && EXTRA+=(--directory)
[ -n "${SKIP_REFERENCE:-}" ] && EXTRA+=(--skip-reference)
[ -n "${SKIP_SMALL:-}" ] && EXTRA+=(--skip-small)
[ -n "${CONCURRENCY:-}" ] && EXTRA+=(--concurrency "$CONCURRENCY")
[ -n "${MAX_RPS:-}" ] && EXTRA+=(--max-rps "$MAX_RPS")
python3 bench/audit.py --users "${USERS:-100000}" --rate "${RATE:-400}" --burst "${BURST:-R}" \
  --latency-ms "${LATENCY_MS:-0}" --fleet "${FLEET:-mixed}" --deadline-ms "${DEADLINE_MS:-40000}" \
  --threads "${THREADS:-1}" --case "$CASE" \
  --function "$BIN/bootstrap" --standin "$BIN/transfer-standin" \
  --emulator "$BIN/lambda-runtime-api" \
  --python "$ROOT/.venv/bin/python" --reference "$ROOT/bench/reference/audit.py" \
  --out "$OUT" "${EXTRA[@]}" >"$OUT/$CASE-result.txt"
if [ "$CASE" = audit ] || [ -n "${DIRECTORY:-}" ]; then
  python3 bench/audit_report.py "$OUT/$CASE.json" | tee "$OUT/$CASE-report.md"
else
  python3 bench/audit_matrix_report.py "$OUT/$CASE.json"
fi
