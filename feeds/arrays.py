"""``BarFeed``: a backtrader feed that loads validated bars from numpy arrays.

backtrader's stock ``PandasData`` reads its DataFrame one cell at a time (``iloc``); this feed
converts the columns once and, when preloading, copies them straight into the line buffers.
Bars are identical either way; ``tests/test_architecture.py`` checks that against
``PandasData``.

Inside backtrader every bar time is naive **America/New_York wall-clock time** and labels the
bar's *start* (the convention of Polygon and Alpaca bars): the 09:30 bar is the first minute
of the session and a market order decided on it fills at the open of the 09:31 bar.

Lines: the usual OHLCV (+ openinterest, always 0) and ``vix``, the latest daily VIX close known
at the bar, i.e. the close of the previous session or earlier (see ``feeds.vix.vix_asof``).
"""
from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd

from mtbt.datenums import date2num_array

_COLUMNS = ("open", "high", "low", "close", "volume", "openinterest", "vix")


class BarFeed(bt.feed.DataBase):
    """Bars from a DataFrame (``feeds.parquet.read_bars`` form, optional ``vix`` column).

    Params:
      - ``dataname``: the DataFrame (tz-aware New York index labelling bar starts, float
        columns open, high, low, close, volume and optionally vix).
    """

    lines = ("vix",)

    def start(self) -> None:
        super().start()
        frame: pd.DataFrame = self.p.dataname
        n = len(frame)
        cols = {"datetime": date2num_array(frame.index)}
        for name in ("open", "high", "low", "close", "volume"):
            cols[name] = frame[name].to_numpy(dtype=float)
        cols["openinterest"] = np.zeros(n)
        vix = frame["vix"] if "vix" in frame else None
        cols["vix"] = np.full(n, np.nan) if vix is None else vix.to_numpy(dtype=float)
        self._cols = cols
        self._rows = None
        self._i = 0
        self._ticks = [(f"tick_{name}", getattr(self.lines, name))
                       for name in self.getlinealiases() if name != "datetime"]
        alias0 = self._getlinealias(0)
        self._tick0 = (f"tick_{alias0}", getattr(self.lines, alias0))

    # backtrader's own two look every line up by name on every bar
    def _tick_nullify(self) -> None:
        for name, _ in self._ticks:
            setattr(self, name, None)
        self.tick_last = None

    def _tick_fill(self, force: bool = False) -> None:
        name0, line0 = self._tick0
        if force or getattr(self, name0, None) is None:
            for name, line in self._ticks:
                setattr(self, name, line.array[line.idx])
            self.tick_last = line0.array[line0.idx]

    def preload(self) -> None:
        if self._filters or self._ffilters or self._tzinput:
            return super().preload()   # filters need the bar-by-bar path
        n = len(self._cols["datetime"])
        for name, values in self._cols.items():
            buf = getattr(self.lines, name)
            buf.array.frombytes(np.ascontiguousarray(values, dtype=float).tobytes())
            buf.idx, buf.lencount = len(buf.array) - 1, len(buf.array)
        self._i = n
        self._last()
        self.home()

    def _load(self) -> bool:
        if self._rows is None:
            self._rows = list(zip(*(self._cols[c].tolist() for c in ("datetime", *_COLUMNS)),
                                  strict=True))
        if self._i >= len(self._rows):
            return False
        row = self._rows[self._i]
        self._i += 1
        lines = self.lines
        lines.datetime[0] = row[0]
        for name, value in zip(_COLUMNS, row[1:], strict=True):
            getattr(lines, name)[0] = value
        return True
