"""Walk-forward windows counted in trading sessions, and the bars each backtest of one sees.

A window is ``train`` sessions followed by the next ``test`` sessions; the next window starts
``test`` sessions later, so the test windows follow one another without gap or overlap and
every test session comes after every session of its own train window.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from feeds.loader import MarketData, window
from mtbt.errors import MtbtError


@dataclass(frozen=True)
class Window:
    """Window ``number`` (1-based): its train and test sessions, first and last (inclusive)."""

    number: int
    train_first: dt.date
    train_last: dt.date
    test_first: dt.date
    test_last: dt.date
    train_sessions: int
    test_sessions: int


def parse_span(text: str, option: str) -> int:
    """``"60d"`` or ``"60"`` -> 60 sessions; anything else is a one-line error."""
    match = re.fullmatch(r"\s*(\d+)\s*d?\s*", text)
    if not match or int(match.group(1)) < 1:
        raise MtbtError(f"{option} {text}: expected a number of trading sessions, e.g. 60d")
    return int(match.group(1))


def session_dates(market: MarketData) -> list[dt.date]:
    """The sessions of ``market`` that may trade (from its ``trade_from`` on)."""
    days = market.bars.index.tz_localize(None).normalize().unique()
    dates = [d.date() for d in days]
    return [d for d in dates if market.trade_from is None or d >= market.trade_from]


def make_windows(sessions: Sequence[dt.date], train: int, test: int) -> list[Window]:
    """Rolling windows over ``sessions``; the last test window may be shorter than ``test``.

    Raises
    ------
    MtbtError
        When there are not more than ``train`` sessions (no session left to test on).
    """
    if len(sessions) <= train:
        span = f" ({sessions[0]} to {sessions[-1]})" if sessions else ""
        raise MtbtError(f"--train {train}d: the data has {len(sessions)} sessions to trade"
                        f"{span}; a walk-forward needs more than {train}")
    windows = []
    for number, lo in enumerate(range(0, len(sessions) - train, test), start=1):
        train_days = sessions[lo:lo + train]
        test_days = sessions[lo + train:lo + train + test]
        windows.append(Window(number, train_days[0], train_days[-1], test_days[0],
                              test_days[-1], len(train_days), len(test_days)))
    return windows


def cut(market: MarketData, first: dt.date, last: dt.date, warmup: int) -> MarketData:
    """``market`` trading ``first`` to ``last``, with ``warmup`` earlier sessions for the
    indicators only: the same cut a backtest with ``data.start``/``data.end`` makes."""
    bars, trade_from = window(market.bars, market.label, first, last, warmup)
    return replace(market, bars=bars, trade_from=trade_from)

