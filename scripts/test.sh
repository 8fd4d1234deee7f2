#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --features transfer-chroot/cli -- -D warnings

step "unit and integration tests (real SDK against the local Transfer stand-in; S3 and SQS: moto on loopback)"
mkdir -p target
source scripts/moto.sh
trap stop_moto EXIT
cargo test --workspace --features transfer-chroot/cli

step "EventBridge rule patterns: every sample of events/ reaches exactly its rule of template.yaml, near misses none (moto's EventBridge and SQS)"
.venv/bin/python -m unittest discover -s tests/eventbridge -v

step "what a person sees: the CLI's progress bar and table under tmux, its HTML report in headless Chromium (installed with apt when missing)"
bash scripts/test-ui.sh

step "chaos soak, 60 s (the real binary, the stand-in and moto's SQS under concurrent traffic and faults; docs/RELIABILITY.md)"
bash scripts/soak.sh 60
stop_moto
trap - EXIT

# Template checks live in two places: the generic IAM and API-authorisation rules are
# cfn-lint custom rules in template-rules/ (run, with their tests, by the step below);
# what needs the Rust code (Timeout vs the SDK timeouts, the variables the config
# reads, the contract's routes) is tests/it/template.rs, run by cargo test above.
step "SAM template: cfn-lint with template-rules (IAM, API auth) and their tests, sam validate --lint, SAM translator, checkov (offline)"
bash scripts/check-template.sh
