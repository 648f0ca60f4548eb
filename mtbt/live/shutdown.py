"""The end of a session stopped by SIGINT/SIGTERM: ``close_out``.

Working entries are cancelled; unless ``keep_positions``, each open trade's exits are
cancelled (a structure's limit close first, at Alpaca) and the trade is closed at market
(exit reason ``shutdown``) through the usual order path, so the journal records it. With
``keep_positions`` the protective exits stay working at Alpaca. It waits (``wait`` seconds
at most) for the closing fills.
"""
from __future__ import annotations

import logging
import time

import backtrader as bt

from mtbt.exits import Stage

log = logging.getLogger("mtbt.live")


def close_out(store, broker, strat, data, *, keep_positions: bool, wait: float = 30.0) -> None:
    """Cancel working entries and (unless ``keep_positions``) close every open trade."""
    if not keep_positions:      # a structure's limit close gives way to the market close
        broker.withdraw_limits()
        _deliver(broker, strat)
    for lot in list(strat._lots.values()):
        if lot.stage is Stage.PENDING:
            for owner, role, order in list(strat._lot_orders.values()):
                if owner is lot and role == "entry" and isinstance(order, bt.Order) \
                        and order.alive():
                    strat.cancel(order)
        elif not keep_positions and not lot.closing:
            strat.close_lot(lot, "shutdown")
    broker.prepare()
    broker.transmit()
    deadline = time.monotonic() + wait
    while broker.working_orders() and not keep_positions and time.monotonic() < deadline:
        if store.ready_url:                    # replay: let the simulator fill them
            store.http.post(store.ready_url, json={"t": "9999-12-31T00:00:00"})
        time.sleep(0.1)
        broker._apply_updates()
        _deliver(broker, strat)
    _deliver(broker, strat)
    left = [lot.trade_id for lot in strat._lots.values() if lot.stage is not Stage.PENDING]
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
        strat._addnotification(order, quicknotify=True)
