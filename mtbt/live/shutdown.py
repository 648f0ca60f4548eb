"""The end of a session stopped by SIGINT/SIGTERM: ``close_out``.

Working entries are cancelled; unless ``keep_positions``, each open trade's exits are
cancelled (a structure's limit close first, at Alpaca) and the trade is closed at market
(exit reason ``shutdown``) through the usual order path, so the journal records it. With
``keep_positions`` the protective exits stay working at Alpaca. It waits (``wait`` seconds
at most) for the closing fills.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from mtbt.exits import Stage

log = logging.getLogger("mtbt.live")
_LAST = dt.datetime(9999, 12, 31)      # a bar time after every bar: "handled everything"


def close_out(store, broker, strat, data, *, keep_positions: bool, wait: float = 30.0) -> None:
    """Cancel working entries and (unless ``keep_positions``) close every open trade."""
    if not keep_positions:      # a structure's limit close gives way to the market close
        broker.withdraw_limits()
        _deliver(broker, strat)
    strat.cancel_entries()
    if not keep_positions:
        for lot in strat.open_lots():
            if lot.stage is not Stage.PENDING and not lot.closing:
                strat.close_lot(lot, "shutdown")
    broker.prepare()
    broker.transmit()
    deadline = time.monotonic() + wait
    while broker.working_orders() and not keep_positions and time.monotonic() < deadline:
        store.ready(_LAST)                     # replay: let the simulator fill them
        time.sleep(0.1)
        broker.apply_updates()
        _deliver(broker, strat)
    _deliver(broker, strat)
    left = [lot.trade_id for lot in strat.open_lots() if lot.stage is not Stage.PENDING]
    if left and not keep_positions:
        log.error("trades still open after %.0f s: %s; check the account", wait, left)
    elif left:
        log.warning("trades left open (--keep-positions): %s", left)


def _deliver(broker, strat) -> None:
    """Hand the broker's notifications to the strategy and its analyzers, as cerebro does."""
    while True:
        order = broker.get_notification()
        if order is None:
            return
        strat.receive(order)
