#!/usr/bin/env bash
# Everything the tests need, then every test. Run from anywhere: `bash scripts/test.sh`.
# - Kafka: the tests start `hypeflow dev-broker` (librdkafka's mock cluster, built with the project) themselves;
#   the smoke test also needs `tansu`, an independent Kafka-compatible broker, installed here if missing
#   (pinned 0.6.0 with the in-memory storage engine; about 12 minutes once, then reused).
# - Prometheus and Chromium from Debian's packages (the metrics test scrapes `run` and `execute`; the demo
#   test loads the dashboard headless).
# - The chain tests start their own anvil (see scripts/evm-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
TANSU_VERSION=0.6.0
export PATH="$HOME/.cargo/bin:$PATH"
if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "== installing tansu $TANSU_VERSION (once)"
  cargo install --locked "tansu@$TANSU_VERSION" --features dynostore
fi
export HYPEFLOW_TANSU="$(command -v tansu)"
# - Prometheus: a real server scrapes the commands' /metrics in the metrics test (Debian's package).
if ! command -v prometheus >/dev/null 2>&1; then
  echo "== installing prometheus (Debian package, once)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
export HYPEFLOW_PROMETHEUS="$(command -v prometheus)"
# - Chromium, headless: the demo test loads the dashboard in a real browser (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package, once)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
export HYPEFLOW_CHROMIUM="$(command -v chromium)"
# - EVM: anvil and Uniswap V3's artifacts from the npm registry (pinned, checksummed, kept outside the clone).
export HYPEFLOW_EVM_DIR="$(bash scripts/evm-setup.sh)"
# Reuse a build cache outside the clone when there is one (CI on the same machine kind).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked --features test-hooks -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets --features test-hooks
