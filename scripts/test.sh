#!/usr/bin/env bash
# Everything the tests need, then every test. Run from anywhere: `bash scripts/test.sh`.
# Nothing external is needed yet (no broker, no EVM node): the core dataflow, backtests and metrics are
# tested in-process and through the `hypeflow` binary.
set -euo pipefail
cd "$(dirname "$0")/.."
# Reuse a build cache outside the clone when there is one (CI on the same machine kind).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets
