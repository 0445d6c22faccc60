#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md. Each line is its own process, so peak RSS is per run.
# Usage: bash bench/run.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
cargo build --release --quiet
HF="$CARGO_TARGET_DIR/release/hypeflow"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(uname -m)"
echo "## growth with N (ticks + N/10 posts, 1 worker)"
for n in 100000 1000000 10000000; do "$HF" bench --ticks "$n" --tweets "$((n / 10))"; done
echo "## per event type, 1 worker"
"$HF" bench --ticks 10000000 --tweets 0
"$HF" bench --ticks 0 --tweets 1000000
echo "## 2 workers"
"$HF" bench --ticks 10000000 --tweets 1000000 -w 2
echo "## SMA pipeline on bars vs a plain loop computing the same crosses (same process)"
"$HF" bench --mode sma-bars --bars 1000000
echo "## the shipped sample, end to end (file loading included)"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" "$HF" backtest --quiet --out /tmp/hypeflow-bench-sample > /dev/null
echo "## Kafka: topics -> run -> orders.intents vs a bare consumer of the same topics (each on a fresh dev-broker)"
fresh_broker() {
  [ -n "${BROKER_PID:-}" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
  coproc BROKER { "$HF" dev-broker 2>/dev/null; }
  read -r line <&"${BROKER[0]}"
  BOOTSTRAP="${line#bootstrap=}"
}
for w in 1 2; do
  fresh_broker
  "$HF" bench --mode kafka --brokers "$BOOTSTRAP" --ticks 400000 -w "$w"
done
echo "## Kafka: the cost of metrics (with --metrics-addr and a scrape every second, against without; alternated)"
# 800,000 ticks + 80,000 posts: about what the mock broker keeps (5 MB per partition)
for round in 1 2 3 4 5 6; do
  for m in off on; do
    fresh_broker
    if [ "$m" = on ]; then extra=(--metrics-addr 127.0.0.1:0); else extra=(); fi
    "$HF" bench --mode kafka --brokers "$BOOTSTRAP" --ticks 800000 -w 2 "${extra[@]}" 2>/dev/null
  done
done
echo "## Kafka: decision lag at a steady 2,000 ticks/s (triggering record / bar close -> intent acknowledged)"
for wait in 10 2; do
  fresh_broker
  "$HF" bench --mode kafka-latency --brokers "$BOOTSTRAP" --rate 2000 --seconds 60 --fetch-wait-ms "$wait"
done
echo "## Live data: X stream lines parsed (and deduped) on one core"
"$HF" bench --mode x-parse --ticks 1000000
echo "## Live data: local X stream at 200 posts/s -> ingest x -> acknowledged social.tweets record"
fresh_broker
"$HF" bench --mode x-latency --brokers "$BOOTSTRAP" --rate 200 --seconds 20
echo "## Live data: LLM scoring stage per batch of 20, against a stand-in model that answers at once"
"$HF" bench --mode llm-overhead --seconds 5
echo "## Executor: intent to broadcast on a local anvil (Uniswap V3), journal and paper throughput;"
echo "## alternated without and with 4 dashboard pages following the journal"
EVM="$(bash scripts/evm-setup.sh)"
for round in 1 2 3; do
  for pages in 0 4; do
    HYPEFLOW_EVM_DIR="$EVM" "$HF" bench --mode executor --seconds 10 --ui-clients "$pages"
  done
done
kill "$BROKER_PID" 2>/dev/null || true
