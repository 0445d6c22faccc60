#!/usr/bin/env bash
# Issue 15's real-shaped posts case: `hypeflow backtest` of the shipped sentiment pipeline with daily bars and
# day-long windows over 500,000 posts spread across three years (bench/posts_3y.py), each run its own
# release process: wall time, posts per second, peak RSS against the posts file, and the backtest's phases.
# Usage: bash bench/posts_3y.sh   (builds the release binary first; SKIP_BUILD=1 skips the build; POSTS_DIR=D
# keeps the generated files in D for the next run; BASELINE=BIN also runs another build, e.g. an earlier
# commit's, alternating with this one, for a ratio measured in the same minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hypeflow-target}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet
HF="$CARGO_TARGET_DIR/release/hypeflow"
if [ -n "${POSTS_DIR:-}" ]; then TMP="$POSTS_DIR"; mkdir -p "$TMP"; else TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT; fi
[ -f "$TMP/tweets.jsonl" ] || python3 bench/posts_3y.py "$TMP"
sed -e 's/^interval = "5m"/interval = "1d"/' -e 's/^window = "1h" .*/window = "1d"/' -e 's/^slide = "5m"/slide = "1d"/' \
  -e 's/^time_stop = "12h"/time_stop = "7d"/' pipelines/influencer_momentum.toml > "$TMP/daily.toml"
grep -q '^interval = "1d"' "$TMP/daily.toml" && grep -q '^window = "1d"' "$TMP/daily.toml" && grep -q '^slide = "1d"' "$TMP/daily.toml"
bytes=$(stat -c %s "$TMP/tweets.jsonl")
n=$(wc -l < "$TMP/tweets.jsonl")
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores; $n posts ($((bytes / 1000000)) MB), $(($(wc -l < "$TMP/bars.csv") - 1)) daily bars"
run() { # label binary
  /usr/bin/time -o "$TMP/time" -f "%e %M" "$2" backtest --quiet --pipeline "$TMP/daily.toml" --prices "$TMP/bars.csv" \
    --tweets "$TMP/tweets.jsonl" --out "$TMP/out-$1" > "$TMP/stdout" 2> /dev/null
  read -r wall rss < "$TMP/time"
  echo "$1: wall=$wall s peak_rss_kib=$rss rss_over_input=$(python3 -c "print(round($rss * 1024 / $bytes, 2))") posts_per_s=$(python3 -c "print(round($n / $wall))")"
  grep -E "^(loaded|phases|posts  |sentiment windows|replay time|trades )" "$TMP/stdout" | sed 's/^/  /'
}
for k in 1 2; do
  [ -z "${BASELINE:-}" ] || run "baseline run $k" "$BASELINE"
  run "run $k" "$HF"
done
if [ -n "${BASELINE:-}" ]; then
  cmp -s "$TMP/out-baseline run 1/intents.jsonl" "$TMP/out-run 1/intents.jsonl" && cmp -s "$TMP/out-baseline run 1/trades.csv" "$TMP/out-run 1/trades.csv" \
    && echo "intents and trades: identical" || echo "intents or trades DIFFER from the baseline's"
fi
