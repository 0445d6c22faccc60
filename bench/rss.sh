#!/usr/bin/env bash
# A backtest's peak RSS against its input size (issue 14's memory bound): the synthetic sample generated for
# more and more days (ticks and posts grow with the days), each backtested in its own process with the
# shipped sentiment pipeline; prints input bytes, peak RSS and their ratio (a small input's ratio is mostly
# the binary's own baseline of about 11 MiB).
# Usage: bash bench/rss.sh   (builds the release binary first; SKIP_BUILD=1 skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
HF="$CARGO_TARGET_DIR/release/hypeflow"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) backtest peak RSS vs input size (influencer_momentum, 1 worker)"
for days in 10 40 160; do
  "$HF" sample generate --out "$TMP/s$days" --days "$days" --seed 7 > /dev/null
  s="$TMP/s$days"
  bytes=$(( $(wc -c < "$s/ticks.jsonl") + $(wc -c < "$s/tweets.jsonl") ))
  rss=$( { /usr/bin/time -f "%M" "$HF" backtest --quiet --prices "$s/ticks.jsonl" --tweets "$s/tweets.jsonl" \
        --out "$TMP/o$days" > /dev/null; } 2>&1 | tail -1)
  awk -v d="$days" -v b="$bytes" -v r="$rss" \
    'BEGIN { printf "days=%d input_bytes=%d peak_rss_kib=%d rss_over_input=%.2f\n", d, b, r, r * 1024 / b }'
done
