#!/usr/bin/env bash
# Development measurement, not a test: the lexicon's figures on public labeled sets that the project does not
# ship (never a tuning target). Looks for them in ../shared (or $HYPEFLOW_PUBLIC_SETS); skips what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${HYPEFLOW_PUBLIC_SETS:-../shared}"
bin="${CARGO_TARGET_DIR:-target}/release/hypeflow"
cargo build --release --locked --quiet
for set in "$root/data/labeled/crypto_sentiment_surge.csv" "$root/eval/stocktwits/stocktwits_crypto_2022-07.csv"; do
  if [[ -f "$set" ]]; then
    "$bin" sentiment eval --labels "$set"
  else
    echo "skipped (not present): $set"
  fi
done
