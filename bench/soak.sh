#!/usr/bin/env bash
# The live run's memory over time (issue 14's soak): `sample live` feeds a steady synthetic market (about 100
# ticks/s plus posts) into a dev-broker for MINUTES minutes (default 30) while `run` consumes it; the run's RSS
# is sampled every 30 s. Usage: bash bench/soak.sh [MINUTES]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
MINUTES="${1:-30}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
HF="$CARGO_TARGET_DIR/release/hypeflow"
coproc BROKER { "$HF" dev-broker 2>/dev/null; }
read -r line <&"${BROKER[0]}"
B="${line#bootstrap=}"
# 3600 sample seconds a second: MINUTES of wall time need MINUTES * 60 * 3600 / 86400 = MINUTES * 2.5 days
DAYS=$(( MINUTES * 5 / 2 + 2 ))
"$HF" sample live --brokers "$B" --speed 3600 --days "$DAYS" --warmup 1h > /dev/null 2>&1 &
FEED=$!
"$HF" run --brokers "$B" --positions model > /dev/null 2>&1 &
RUN=$!
trap 'kill $FEED $RUN $BROKER_PID 2>/dev/null || true' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) soak: run RSS every 30 s for $MINUTES min (sample live --speed 3600)"
for ((i = 0; i <= MINUTES * 2; i++)); do
  [ "$i" -gt 0 ] && sleep 30
  kill -0 "$RUN" 2>/dev/null || { echo "run exited"; exit 1; }
  echo "t=$((i * 30))s rss_kib=$(ps -o rss= -p "$RUN" | tr -d ' ')"
done
