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
_MINUTE = dt.timedelta(minutes=1)


def close_out(store, broker, strat, data, *, keep_positions: bool, wait: float = 30.0) -> None:
    """Cancel working entries and (unless ``keep_positions``) close every open trade."""
    if not keep_positions:      # a structure's limit close gives way to the market close
        broker.withdraw_limits()
        _deliver(broker, strat)
    strat.cancel_entries()
    _close(broker, strat, keep_positions, always=True)
    deadline = time.monotonic() + wait
    bar = data.datetime.datetime(0) if len(data) else _LAST
    while (broker.working_orders() or _unclosed(strat)) and not keep_positions and \
            time.monotonic() < deadline:
        store.ready(bar)              # replay: the simulator steps a bar to fill them
        bar = min(bar + _MINUTE, _LAST)
        time.sleep(0.1)
        broker.apply_updates()
        _deliver(broker, strat)
        _close(broker, strat, keep_positions)  # a close withdrawn (its trade's exits still
    _deliver(broker, strat)                    # pending cancel at Alpaca) goes again
    left = [lot.trade_id for lot in strat.open_lots() if lot.stage is not Stage.PENDING]
    if left and not keep_positions:
        log.error("trades still open after %.0f s: %s; check the account", wait, left)
    elif left:
        log.warning("trades left open (--keep-positions): %s", left)


def _unclosed(strat) -> list:
    """The open trades with no close working."""
    return [lot for lot in strat.open_lots()
            if lot.stage is not Stage.PENDING and not lot.closing]


def _close(broker, strat, keep_positions: bool, always: bool = False) -> None:
    """Close (unless ``keep_positions``) every open trade with no close working, and send
    what that and the cancels before it made (``always``: send even if nothing was)."""
    lots = [] if keep_positions else _unclosed(strat)
    for lot in lots:
        strat.close_lot(lot, "shutdown")
    if lots or always:
        broker.prepare()
        broker.transmit()


def _deliver(broker, strat) -> None:
    """Hand the broker's notifications to the strategy and its analyzers, as cerebro does."""
    while True:
        order = broker.get_notification()
        if order is None:
            return
        strat.receive(order)
