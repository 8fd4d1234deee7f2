#!/usr/bin/env bash
# Sourced by the scripts that run what cargo built: TARGET_DIR is where cargo puts its
# builds, as cargo itself decides (CARGO_TARGET_DIR, build.target-dir in a
# .cargo/config.toml, else ./target), so a machine with a shared target directory runs
# the same binaries it just built. Logs and captures stay in ./target (LOG_DIR).
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
LOG_DIR=target
mkdir -p "$TARGET_DIR" "$LOG_DIR"
