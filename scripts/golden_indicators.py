#!/usr/bin/env python3
"""Reference values for the indicator golden tests (src/dataflow/conditions.rs).

Prints a Rust snippet: a fixed 120-bar series (4 decimals) and, at a few bars, the values TA-Lib computes
(SMA, EMA, RSI, MACD, Bollinger bands; not ATR: the project's ATR counts the first bar's range as a true
range, TA-Lib's starts at the second bar) and pandas' rolling windows (VWAP and the volume z-score, which
TA-Lib has not). Run it in a throwaway venv, never in the tests:

    python3 -m venv /tmp/ta && /tmp/ta/bin/pip install TA-Lib==0.8.2 pandas numpy
    /tmp/ta/bin/python scripts/golden_indicators.py
"""
import math

import numpy as np
import pandas as pd
import talib

N = 120
close = np.array([round(100 + 10 * math.sin(i / 7) + 3 * math.cos(i / 3.1) + 0.05 * i, 4) for i in range(N)])
high = np.array([round(c + 1 + 0.5 * abs(math.sin(i)), 4) for i, c in enumerate(close)])
low = np.array([round(c - 1 - 0.5 * abs(math.cos(i)), 4) for i, c in enumerate(close)])
volume = np.array([round(1000 + 300 * math.sin(i / 5) + 200 * math.cos(i / 2), 4) for i in range(N)])

ref = {
    "sma(20)": talib.SMA(close, 20),
    "ema(10)": talib.EMA(close, 10),
    "rsi(14)": talib.RSI(close, 14),
}
m, s, h = talib.MACD(close, 12, 26, 9)
ref["macd(12,26,9)"], ref["macd_signal(12,26,9)"], ref["macd_hist(12,26,9)"] = m, s, h
up, mid, lo = talib.BBANDS(close, 20, 2.0, 2.0, 0)
ref["bb_upper(20,2)"], ref["bb_lower(20,2)"] = up, lo
typical = (high + low + close) / 3
df = pd.DataFrame({"pv": typical * volume, "v": volume})
ref["vwap(14)"] = (df.pv.rolling(14).sum() / df.v.rolling(14).sum()).to_numpy()
vol = pd.Series(volume)
ref["volume_z(20)"] = ((vol - vol.rolling(20).mean()) / vol.rolling(20).std(ddof=0)).to_numpy()

def arr(name, xs):
    return f"const {name}: [&str; {N}] = [{', '.join(repr(f'{x:.4f}') for x in xs)}];".replace("'", '"')

print(arr("CLOSE", close))
print(arr("HIGH", high))
print(arr("LOW", low))
print(arr("VOLUME", volume))
print(f"// TA-Lib {talib.__version__}, pandas {pd.__version__}")
print("const GOLDEN: &[(&str, usize, f64)] = &[")
for name, xs in ref.items():
    for i in (13, 14, 19, 25, 33, 60, 119):
        x = float(xs[i])
        value = "f64::NAN" if math.isnan(x) else repr(x)  # NaN: the reference has no value yet
        print(f"    ({name!r}, {i}, {value}),".replace("'", '"'))
print("];")
