"""Layout rules from DESIGN.md that code review would otherwise have to catch."""
from __future__ import annotations

import ast
from pathlib import Path

import backtrader as bt

from mtbt.config import load_run
from mtbt.runner import strategy_kwargs
from mtbt.strategies import WaveRenko

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("alpaca", "polygon", "feeds", "mtbt.alpaca", "mtbt.brokers", "mtbt.live",
             "mtbt.sim", "pyarrow", "analyzers", "requests")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_the_simulator_stands_apart_from_the_client_it_tests():
    """The local Alpaca simulator shares fill rules and the option model with mtbt, never
    the paper trader's own code (it would then test itself)."""
    client = ("mtbt.alpaca", "mtbt.brokers", "mtbt.live", "feeds.alpaca", "mtbt.strategies")
    for path in sorted((ROOT / "mtbt" / "sim").glob("*.py")):
        for name in _imports(path):
            assert not name.startswith(client), f"sim/{path.name} imports {name}"


def test_strategies_import_nothing_venue_or_file_specific():
    for path in sorted((ROOT / "mtbt" / "strategies").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                raise AssertionError(f"{path.name} opens a file")


def test_every_strategy_key_of_the_run_file_is_a_strategy_param():
    """backtrader silently drops unknown strategy kwargs; this keeps the config honest."""
    params = set(WaveRenko.params._getkeys())
    assert set(strategy_kwargs(load_run())) <= params
    cfg_keys = set(load_run().strategy.model_dump()) - {"name", "symbol"}
    assert cfg_keys <= params


def test_the_feed_gives_the_same_bars_as_backtraders_pandas_feed():
    from feeds.arrays import BarFeed
    from feeds.sample import sample_bars

    frame = sample_bars(seed=1, n_sessions=20)

    class Record(bt.Strategy):
        def __init__(self):
            self.rows = []

        def next(self):
            d = self.data
            self.rows.append((d.datetime[0], d.open[0], d.high[0], d.low[0], d.close[0],
                              d.volume[0]))

    def bars(feed, **mode):
        cerebro = bt.Cerebro(stdstats=False, **mode)
        cerebro.adddata(feed)
        cerebro.addstrategy(Record)
        return cerebro.run()[0].rows

    stock = bars(bt.feeds.PandasData(dataname=frame.tz_localize(None)))
    assert bars(BarFeed(dataname=frame)) == stock
    assert bars(BarFeed(dataname=frame), preload=False, runonce=False) == stock


def test_the_strategy_is_resolved_from_the_run_file_by_name_or_module_class():
    from mtbt.errors import ConfigError
    from mtbt.runner import resolve_strategy
    from mtbt.strategies import IronCondor0DTE

    assert resolve_strategy(load_run(None, ['strategy.name="iron_condor"'])) is IronCondor0DTE
    cfg = load_run(None, ['strategy.name="mtbt.strategies.wave_renko:WaveRenko"'])
    assert resolve_strategy(cfg) is WaveRenko
    for name, why in (("nowhere.at_all:X", "No module named 'nowhere'"),
                      ("mtbt.risk:RiskManager", "not a ManagedStrategy subclass")):
        try:
            resolve_strategy(load_run(None, [f'strategy.name="{name}"']))
        except ConfigError as exc:
            assert why in str(exc) and "strategy.name" in str(exc)
        else:
            raise AssertionError(f"{name} was accepted")

