"""Each backtrader breakage that mtbt.compat fixes, shown to be fixed."""
from __future__ import annotations

import subprocess
import sys

import backtrader as bt
import numpy as np
import pandas as pd

import mtbt.compat


def _frame(n: int = 60) -> pd.DataFrame:
    idx = pd.date_range("2024-01-02 09:30", periods=n, freq="1min")
    close = np.linspace(100.0, 101.0, n)
    return pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1e3},
        index=idx,
    )


def test_bindlines_works_without_collections_iterable():
    mtbt.compat.apply()

    class Doubled(bt.Indicator):
        lines = ("x",)

        def __init__(self):
            self.l.x = self.data.close * 2

    class Wrapper(bt.Indicator):
        lines = ("y",)

        def __init__(self):
            Doubled(self.data).bindlines(owner=0, own=0)   # collections.Iterable path

    class S(bt.Strategy):
        def __init__(self):
            self.w = Wrapper(self.data)

        def stop(self):
            self.last = self.w.y[0]

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=_frame()))
    cerebro.addstrategy(S)
    (strat,) = cerebro.run()
    assert strat.last == 202.0


def _headless_python(code: str) -> subprocess.CompletedProcess:
    env = {"MPLBACKEND": "Agg", "DISPLAY": ""}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


_PYPLOT = "import matplotlib.pyplot as plt; plt.figure(); print(plt.get_backend())"


def test_plot_import_breaks_pyplot_without_the_fix():
    """The breakage itself: ``import backtrader.plot`` switches a headless process to TKAgg."""
    out = _headless_python("import backtrader.plot;" + _PYPLOT)
    assert out.returncode != 0 and "TKAgg" in out.stderr


def test_plot_import_keeps_the_backend_with_the_fix():
    out = _headless_python("import mtbt.compat; mtbt.compat.apply(); import backtrader.plot;"
                           + _PYPLOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().lower() == "agg"


def test_backtrader_plot_renders_headless(tmp_path):
    mtbt.compat.apply()

    class S(bt.Strategy):
        def __init__(self):
            bt.ind.SMA(period=5)

    cerebro = bt.Cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=_frame()))
    cerebro.addstrategy(S)
    cerebro.run()
    figs = cerebro.plot(iplot=False)
    figs[0][0].savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0
