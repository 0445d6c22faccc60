#!/usr/bin/env bash
# Everything the tests need, then every test. Run from anywhere: `bash scripts/test.sh`.
# - Kafka: the tests start `hypeflow dev-broker` (librdkafka's mock cluster, built with the project) themselves;
#   the smoke test also needs `tansu`, an independent Kafka-compatible broker, installed here if missing
#   (pinned 0.6.0 with the in-memory storage engine; about 12 minutes once, then reused).
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
# - Debian packages, installed once when missing: prometheus (the metrics test scrapes `run` and `execute`),
#   chromium (the demo test loads the dashboard headless), docker-compose (validates deploy/compose.yaml
#   without an engine), python3-venv (for kubernetes-validate below).
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
python3 -c "import ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]} (once)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export HYPEFLOW_PROMETHEUS="$(command -v prometheus)"
export HYPEFLOW_CHROMIUM="$(command -v chromium)"
# - deploy/ validated offline: compose by docker-compose, the Kubernetes manifests by kubernetes-validate
#   (pinned, from PyPI, in a venv outside the clone).
echo "== deploy/: docker-compose config, kubernetes-validate"
(cd deploy && docker-compose -f compose.yaml config -q)
KV="$HOME/.cache/hypeflow-kv"
KV_VERSION=1.37.0
if ! "$KV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KV_VERSION"; then
  python3 -m venv "$KV"
  "$KV/bin/pip" install -q "kubernetes-validate==$KV_VERSION"
fi
"$KV/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml
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
