"""The paper session's bar loop: what happens after the strategy has handled a bar.

``BarLoop`` runs once the strategy (and its analyzers) are done with a bar the session acts
on: every live bar, and the last bar of the history (the simulator of ``--replay`` then starts
streaming). In this order:

1. the broker gives the orders made on the bar their client ids (``prepare``);
2. the checkpoint: the strategy's and the broker's state and those orders, in one
   transaction, so an order is on record before it is sent;
3. the broker sends them (``transmit``);
4. the session files get a balance row, and the status file is rewritten;
5. the store tells the replay simulator that the bar is handled (``ready``).

At the last bar of the history, before the first live one, everything the warm-up made is
collected once and frozen out of the garbage collector's reach (``gc.freeze``): a full
collection over it otherwise lands, tens of milliseconds long, on some live bar's orders.
``run_paper`` unfreezes it when the session ends.

The feed only delivers bars; nothing here runs inside it.
"""
from __future__ import annotations

import datetime as dt
import gc
import time

import backtrader as bt

from mtbt.live.logs import SessionFiles
from mtbt.live.status import SessionStatus
from mtbt.state import StateStore

_MINUTE = dt.timedelta(minutes=1)


class BarLoop:
    """Checkpoint, orders, session files after each bar (see the module docstring)."""

    def __init__(self, store, broker, data, state: StateStore, files: SessionFiles,
                 status: SessionStatus | None = None) -> None:
        self.store, self.broker, self.data = store, broker, data
        self.state, self.files, self.status = state, files, status
        self.bar_seconds: list[float] = []      # live bar arrival -> orders sent, per bar
        self._frozen = False                    # the warm-up's objects out of the gc's reach

    def attach(self, cerebro: bt.Cerebro) -> None:
        """Run after the strategy on every bar of ``cerebro``."""
        cerebro.addanalyzer(_AfterBar, _name="bar_loop", loop=self)

    def after_bar(self, strat) -> None:
        data, broker = self.data, self.broker
        if not data.handled_bar_due():
            return
        last = data.datetime.datetime(0)
        broker.prepare()
        if strat.trading:              # never overwrite a checkpoint before resuming it
            self.state.save(broker.take_rows(), strategy=strat.snapshot(),
                            broker=broker.snapshot(data))
        broker.transmit()
        if data.last_arrival is not None:
            self.bar_seconds.append(time.monotonic() - data.last_arrival)
        if strat.trading:
            self.files.bar(last + _MINUTE, strat, broker)
            if self.status is not None:         # the dashboard's file, orders already sent
                self.status.bar(last + _MINUTE, strat, broker, data, self.bar_seconds)
        if not self._frozen:            # the history's last bar: the live bars come next
            self._frozen = True
            gc.collect()
            gc.freeze()
        self.store.ready(last)


class _AfterBar(bt.Analyzer):
    """backtrader's hook after the strategy's ``next``: hands the bar to the ``BarLoop``."""

    params = (("loop", None),)

    def prenext(self) -> None:
        self.next()

    def next(self) -> None:
        self.p.loop.after_bar(self.strategy)
