#!/usr/bin/env python3
"""Writes the issue-15 bar set: 50 tokens x 20,000 five-minute bars (1,000,000 bars), a seeded random walk.

    python3 bench/bars_1m.py OUT_DIR [TOKENS] [BARS]

OUT_DIR/bars.csv is hypeflow's bar CSV (token,timestamp,open,high,low,close,volume); OUT_DIR/feather/
holds the same bars as Freqtrade's per-pair JSON candles (TOKEN_USDT-5m.json: [[ms,o,h,l,c,v],...]) so both
tools read identical data.
"""
import json
import os
import random
import sys

out = sys.argv[1]
tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 50
bars = int(sys.argv[3]) if len(sys.argv) > 3 else 20_000
start_ms = 1_704_067_200_000  # 2024-01-01T00:00:00Z
step = 300_000
rng = random.Random(15)
os.makedirs(os.path.join(out, "json"), exist_ok=True)
names = [f"T{i:02d}" for i in range(tokens)]
series = {}
for name in names:
    p = rng.uniform(1, 200)
    rows = []
    for k in range(bars):
        o = p
        p = max(p * (1 + rng.gauss(0, 0.004)), 0.0001)
        h = max(o, p) * (1 + abs(rng.gauss(0, 0.001)))
        l = min(o, p) * (1 - abs(rng.gauss(0, 0.001)))
        v = round(rng.uniform(100, 10_000), 2)
        rows.append((start_ms + k * step, round(o, 6), round(h, 6), round(l, 6), round(p, 6), v))
    series[name] = rows
with open(os.path.join(out, "bars.csv"), "w") as f:
    f.write("token,timestamp,open,high,low,close,volume\n")
    for name in names:
        for t, o, h, l, c, v in series[name]:
            f.write(f"{name},{t},{o},{h},{l},{c},{v}\n")
for name in names:
    with open(os.path.join(out, "json", f"{name}_USDT-5m.json"), "w") as f:
        json.dump([list(r) for r in series[name]], f)
