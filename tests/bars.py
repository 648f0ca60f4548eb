"""Hand-made minute bars for strategy and indicator tests."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from mtbt.sessions import NY, sessions

Bar = tuple[float, float, float, float]


def session_frame(day: dt.date, base: float = 100.0, *, levels: dict[str, float] | None = None,
                  bars: dict[str, Bar] | None = None, vix: float = 18.0) -> pd.DataFrame:
    """One XNYS session of flat 1-minute bars (open = close, high/low 2 cents away).

    ``levels`` moves the flat price from a minute on ({"10:00": 101.0}); ``bars`` then sets
    single bars to (open, high, low, close) by "HH:MM". The ``vix`` column is constant.
    """
    session = sessions(day, day)[day]
    index = pd.date_range(session.open, session.close, freq="1min", inclusive="left")
    price = pd.Series(base, index=index)
    for hhmm, level in sorted((levels or {}).items()):
        price[price.index >= _at(day, hhmm)] = level
    frame = pd.DataFrame({"open": price, "high": price + 0.02, "low": price - 0.02,
                          "close": price, "volume": 1_000.0, "vix": vix})
    for hhmm, ohlc in (bars or {}).items():
        frame.loc[_at(day, hhmm), ["open", "high", "low", "close"]] = list(ohlc)
    frame.index = frame.index.tz_localize(NY)
    frame.index.name = "timestamp"
    return frame


def _at(day: dt.date, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time.fromisoformat(hhmm)))
