"""Runs the freqtrade CLI with the exchange's market list supplied locally: this machine reaches package
registries only, and a backtest needs no more of an exchange than its list of spot pairs (the symbols of the
data directory's JSON candles, quoted in USDT, without amount or price limits).

    python offline.py DATADIR freqtrade-arguments...
"""
import os
import sys

from freqtrade.exchange import exchange as ft_exchange
from freqtrade.main import main

DATADIR = sys.argv.pop(1)
PAIRS = sorted(
    f.split("-")[0].replace("_", "/") for f in os.listdir(DATADIR) if f.endswith(".json")
)


def market(pair):
    base, quote = pair.split("/")
    unbounded = {"min": None, "max": None}
    return {
        "id": base + quote, "symbol": pair, "base": base, "quote": quote, "baseId": base, "quoteId": quote,
        "active": True, "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
        "option": False, "contract": False, "linear": None, "inverse": None, "settle": None,
        "precision": {"amount": 1e-8, "price": 1e-8},
        "limits": {"amount": unbounded, "cost": unbounded, "price": unbounded, "leverage": unbounded},
        "info": {},
    }


def load_markets_locally(self, reload=False):
    self._api_async.set_markets([market(p) for p in PAIRS])


ft_exchange.Exchange._load_async_markets = load_markets_locally
sys.exit(main())
