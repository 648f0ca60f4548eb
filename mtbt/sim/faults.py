"""Fault knobs of the simulator and the per-request decisions they make (all off by default)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Faults", "RestFault"]


@dataclass(frozen=True)
class Faults:
    """What the simulator does wrong on purpose.

    - ``drop_streams_every``: close every websocket connection (both streams) every N s.
    - ``drop_streams_at``: close every websocket connection once, right after the Nth bar
      of the replayed day is streamed (counting from 1).
    - ``unstreamed_bars``: the first N bars of the replayed day are not streamed; a client
      gets them over REST only (as when the bar stream drops right at the open).
    - ``error_every``: every Nth REST request (``/_sim`` routes not counted) answers an
      error instead, cycling 500, 429. For ``POST /v2/orders`` the faults alternate between
      failing *before* creating the order (the next status of the cycle) and failing *after*
      creating it (the order is on the book and its ``new`` event is sent, but the client
      gets 500; this does not advance the 500/429 cycle). The first order fault is *before*.
    - ``error_orders_every``: also every Nth order submission (``POST /v2/orders``, counted
      on its own) fails as above, so a test can count on orders failing whatever the other
      requests around them were (``error_every`` alone hits an order by chance).
    - ``reject_order``: the first order submitted (``POST /v2/orders``) whose
      ``client_order_id`` contains this text is refused as Alpaca refuses an order it will
      not take: HTTP 403 "insufficient buying power" (code 40310000), nothing created.
      ``reject_times`` (default 1): the first that many such orders are refused.
    - ``slow_every`` / ``slow_seconds``: every Nth REST request waits that long first.
    - ``duplicate_fills``: every fill/partial_fill event is sent twice (same execution_id).
    - ``reorder_fills``: the trade_updates events of one step are sent in reverse order.
    - ``partial_fills``: each equity order fills in two executions (floor half, at least 1,
      then the rest; same price): ``partial_fill`` then ``fill``.
    - ``slip`` / ``slip_fill``: the ``slip_fill``-th equity order to fill (counting from 1,
      in the order they fill) fills ``slip`` dollars per share worse than the rules give
      (dearer for a buy, cheaper for a sell), a limit order too: a fill the trader did not
      expect (``mtbt compare`` reports it as slippage).
    - ``fill_on_cancel``: the first cancel (``DELETE /v2/orders/{id}``) of a working equity
      order whose ``client_order_id`` contains this text finds it filled: it fills at the
      last bar's close as the cancel arrives, and the cancel is refused (HTTP 422), as when
      a stop fills while its cancel is on the way.
    - ``pending_cancel``: the first cancel of a working equity order whose
      ``client_order_id`` contains this text is accepted (HTTP 204) but not done at once: the
      order (both legs of an oco) is ``pending_cancel`` (its event sent), works no more and
      holds no qty, and at the next bar (``pending_cancel_bars`` on) fills at the last
      bar's close, as when the cancel reached the venue after the order executed
      (``pending_cancel_fills`` off: it is cancelled then). Alpaca does not say whether a
      ``pending_cancel`` order still holds the shares: this is the worse case, a close sent
      meanwhile is accepted.
    - ``late_oco_cancels``: when one leg of an oco fills, the ``canceled`` events of its
      other leg (which Alpaca cancels itself) are sent a bar later, with the next events
      (Alpaca does not say when it tells them: the fill may be known first).
    """

    drop_streams_every: float = 0.0
    drop_streams_at: int = 0
    unstreamed_bars: int = 0
    error_every: int = 0
    error_orders_every: int = 0
    reject_order: str = ""
    reject_times: int = 1
    slow_every: int = 0
    slow_seconds: float = 0.0
    duplicate_fills: bool = False
    reorder_fills: bool = False
    partial_fills: bool = False
    slip: float = 0.0
    slip_fill: int = 1
    fill_on_cancel: str = ""
    pending_cancel: str = ""
    pending_cancel_fills: bool = True
    pending_cancel_bars: int = 1
    late_oco_cancels: bool = False


@dataclass(frozen=True)
class RestFault:
    """What to do to one REST request: wait ``slow`` s; answer ``status`` (if any) before
    or after (``after_create``) creating an order."""

    slow: float = 0.0
    status: int | None = None
    after_create: bool = False


class RestFaults:
    """Counts REST requests and decides which ones misbehave (thread-safe)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self._count = self._errors = self._order_errors = self._orders = 0
        self._rejected = 0

    def next(self, is_order_post: bool) -> RestFault:
        f = self.faults
        with self._lock:
            self._count += 1
            n = self._count
            slow = f.slow_seconds if f.slow_every and n % f.slow_every == 0 else 0.0
            hit = bool(f.error_every and n % f.error_every == 0)
            if is_order_post and f.error_orders_every:
                self._orders += 1
                hit = hit or self._orders % f.error_orders_every == 0
            if not hit:
                return RestFault(slow)
            after = False
            if is_order_post:
                after = self._order_errors % 2 == 1
                self._order_errors += 1
            if after:
                return RestFault(slow, 500, True)
            status = (500, 429)[self._errors % 2]
            self._errors += 1
            return RestFault(slow, status, False)

    def refuses(self, order: object) -> bool:
        """Whether to refuse this order submission (``reject_order``, ``reject_times``)."""
        text = self.faults.reject_order
        client_id = order.get("client_order_id") if isinstance(order, dict) else None
        with self._lock:
            if self._rejected >= self.faults.reject_times or not text or \
                    text not in str(client_id or ""):
                return False
            self._rejected += 1
            return True
