#!/usr/bin/env bash
# Issue 15's whole-process figure: `hypeflow backtest` of the SMA(10)/SMA(30) pipeline with a 5% stop and 5
# open trades over 1,000,000 five-minute bars (50 tokens x 20,000), run as its own process, with its wall
# time, peak RSS and the phases the backtest reports, beside the same run with correlations and clusters
# computed (the work every bar did before a pipeline without a cluster cap skipped it).
# Usage: bash bench/bars_1m.sh   (builds the release binary first; SKIP_BUILD=1 skips the build; BARS_DIR=D
# keeps the generated bars in D for the next run; FREQTRADE=1 also runs Freqtrade 2026.9 on the same candles,
# installed from PyPI into a venv under ~/.cache the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
HF="$CARGO_TARGET_DIR/release/hypeflow"
if [ -n "${BARS_DIR:-}" ]; then TMP="$BARS_DIR"; mkdir -p "$TMP"; else TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT; fi
[ -f "$TMP/bars.csv" ] || python3 bench/bars_1m.py "$TMP"
sed -e 's/^tokens = \[.*\]/tokens = "*"/' pipelines/sma_cross.toml > "$TMP/sma.toml"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores; $(wc -l < "$TMP/bars.csv") lines of bars.csv ($(du -m "$TMP/bars.csv" | cut -f1) MB)"
sed -e 's/^max_cluster_fraction = 1 .*/max_cluster_fraction = 0.999/' "$TMP/sma.toml" > "$TMP/sma_clusters.toml"
# each configuration as its own process: the shipped one (no cluster cap: no correlation computed), and the
# baseline that computes every pair's correlation and the clusters at every bar under a cap that never binds
for conf in sma sma_clusters; do
  for run in 1 2; do
    /usr/bin/time -o "$TMP/time" -f "wall=%e s peak_rss_kib=%M" "$HF" backtest --quiet --pipeline "$TMP/$conf.toml" \
      --prices "$TMP/bars.csv" --out "$TMP/out" > "$TMP/stdout" 2> /dev/null
    echo "$conf run $run: $(cat "$TMP/time")"
    grep -E "^(loaded|phases|replay time|trades |outputs written)" "$TMP/stdout" | sed 's/^/  /'
  done
done
# a sweep of 10 combinations over the same bars (inputs read once, 2 runs at a time), against 10 times the
# single backtest above
/usr/bin/time -o "$TMP/time" -f "wall=%e s peak_rss_kib=%M" "$HF" sweep --pipeline "$TMP/sma.toml" --prices "$TMP/bars.csv" \
  --grid signal.fast=5,8,10,12,15 --grid sizing.stop_loss=0.03,0.05 --top 1 -j 2 --out "$TMP/sweep" > "$TMP/stdout"
echo "sweep of 10: $(cat "$TMP/time"); $(grep 'runs in' "$TMP/stdout")"
if [ -n "${FREQTRADE:-}" ]; then
  # the same strategy and candles through Freqtrade, in the same script; its exchange market list is supplied
  # locally (bench/freqtrade/offline.py): this machine reaches package registries only
  VENV="$HOME/.cache/hypeflow-freqtrade"
  "$VENV/bin/freqtrade" --version 2>/dev/null | grep -q "freqtrade 2026.9" || {
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "freqtrade==2026.9"; }
  FT="$TMP/freqtrade"; mkdir -p "$FT/data/binance" "$FT/strategies"
  cp bench/freqtrade/SmaCross.py "$FT/strategies/"
  for f in "$TMP"/json/*.json; do ln -sf "$f" "$FT/data/binance/$(basename "$f")"; done
  python3 - "$FT" <<'PY'
import json, os, sys
ft = sys.argv[1]
pairs = sorted(f.split("-")[0].replace("_", "/") for f in os.listdir(f"{ft}/data/binance"))
json.dump({"max_open_trades": 5, "stake_currency": "USDT", "stake_amount": 100, "dry_run": True,
           "dry_run_wallet": 1000, "timeframe": "5m", "trading_mode": "spot", "fee": 0.001,
           "exchange": {"name": "binance", "pair_whitelist": pairs, "skip_pair_validation": True},
           "pairlists": [{"method": "StaticPairList"}], "entry_pricing": {"price_side": "same"},
           "exit_pricing": {"price_side": "same"}, "dataformat_ohlcv": "json", "user_data_dir": ft,
           "strategy_path": f"{ft}/strategies"}, open(f"{ft}/config.json", "w"))
PY
  for run in 1 2; do
    /usr/bin/time -o "$TMP/time" -f "wall=%e s peak_rss_kib=%M" "$VENV/bin/python" bench/freqtrade/offline.py "$FT/data/binance" \
      backtesting -c "$FT/config.json" -s SmaCross --datadir "$FT/data/binance" --cache none > "$TMP/ft.out" 2>&1
    echo "freqtrade run $run: $(cat "$TMP/time"); $(grep -E "│ SmaCross" "$TMP/ft.out" | tail -1 | awk -F'│' '{gsub(/ /,"",$3); print "trades " $3}')"
  done
fi
