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
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests (real SDK against the local Transfer stand-in)"
cargo test --workspace

step "SAM template: cfn-lint, sam validate --lint, SAM translator (IAM rules: tests/it/template.rs)"
bash scripts/check-template.sh
