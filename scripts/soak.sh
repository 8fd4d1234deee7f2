#!/usr/bin/env bash
# The chaos soak (docs/RELIABILITY.md, "Reconcile, not replay"): the real function binary
# (several processes under the Runtime API emulator), the Transfer stand-in and moto's
# SQS with a DLQ, concurrent traffic and random faults for SECONDS (default 60), then the
# invariants at quiescence. Exits non-zero on any violation; figures in
# target/soak-summary.json.
#   bash scripts/soak.sh [SECONDS]        SOAK_SEED=n replays the random choices
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
source scripts/target-dir.sh
cargo build --quiet --features transfer-chroot/cli --bin bootstrap --example soak
started_moto=false
if [[ -z ${MOTO_ENDPOINT:-} ]]; then
  source scripts/moto.sh
  trap stop_moto EXIT
  started_moto=true
fi
"$TARGET_DIR/debug/examples/soak" "$SECONDS_TO_RUN"
if $started_moto; then stop_moto; trap - EXIT; fi
