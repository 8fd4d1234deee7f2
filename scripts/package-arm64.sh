#!/usr/bin/env bash
# Builds the Lambda deployment package for arm64 (Graviton, provided.al2023):
# <target dir>/lambda/bootstrap/bootstrap.zip, and prints its size.
#
# cargo-lambda cross-compiles with zig as the linker. Both come from PyPI into
# .venv; cargo-lambda finds zig through `python3 -m ziglang`, so .venv/bin must
# come first on PATH. A cold build takes 4-12 minutes on 2 cores (release: LTO, codegen-units 1).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
if [[ ! -x $VENV/bin/cargo-lambda ]] || ! "$VENV/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "installing cargo-lambda and ziglang into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check cargo-lambda ziglang
fi
export PATH="$PWD/$VENV/bin:$PATH"

rustup target add aarch64-unknown-linux-gnu
echo "cargo-lambda $(cargo lambda --version | awk '{print $2}'), zig $(python3 -m ziglang version)"

cargo lambda build --release --arm64 --output-format zip --bin bootstrap

source scripts/target-dir.sh
zip=$TARGET_DIR/lambda/bootstrap/bootstrap.zip
[[ -f $zip ]] || { echo "expected $zip" >&2; exit 1; }
bytes=$(stat -c %s "$zip")
unzipped=$(python3 -c 'import sys,zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
printf 'arm64 package: %s\n  zip:       %d bytes (%s MB)\n  bootstrap: %d bytes unzipped (%s MB)\n' \
  "$zip" "$bytes" "$(python3 -c "print(f'{$bytes/1e6:.2f}')")" \
  "$unzipped" "$(python3 -c "print(f'{$unzipped/1e6:.2f}')")"
