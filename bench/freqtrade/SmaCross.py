"""The SMA(10)/SMA(30) cross of pipelines/sma_cross.toml as a Freqtrade strategy: enter when the fast mean
crosses above the slow one, exit when it crosses below, 5% stop, no ROI table (bench/bars_1m.sh runs it)."""
from freqtrade.strategy import IStrategy


class SmaCross(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 100}
    stoploss = -0.05
    startup_candle_count = 30
    process_only_new_candles = True

    def populate_indicators(self, df, metadata):
        df["fast"] = df["close"].rolling(10).mean()
        df["slow"] = df["close"].rolling(30).mean()
        return df

    def populate_entry_trend(self, df, metadata):
        up = (df["fast"] > df["slow"]) & (df["fast"].shift(1) <= df["slow"].shift(1))
        df.loc[up, "enter_long"] = 1
        return df

    def populate_exit_trend(self, df, metadata):
        down = (df["fast"] < df["slow"]) & (df["fast"].shift(1) >= df["slow"].shift(1))
        df.loc[down, "exit_long"] = 1
        return df
