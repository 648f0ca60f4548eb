"""XNYS sessions as the simulator needs them: which session a moment belongs to, closes."""
from __future__ import annotations

import bisect
import datetime as dt

import pandas as pd

from mtbt.sessions import NY, Session, sessions

__all__ = ["SessionBook", "naive_ny"]


def naive_ny(t: dt.datetime | pd.Timestamp) -> dt.datetime:
    """A tz-aware moment as a naive New York datetime (backtrader's clock)."""
    return pd.Timestamp(t).tz_convert(NY).tz_localize(None).to_pydatetime()


class SessionBook:
    """XNYS sessions from ``first`` to ``last`` (widened on demand), searchable by time."""

    def __init__(self, first: dt.date, last: dt.date) -> None:
        self._first, self._last = first, last
        self._load()

    def _load(self) -> None:
        self.by_date: dict[dt.date, Session] = sessions(self._first, self._last)
        self._list = list(self.by_date.values())
        self._closes = [s.close for s in self._list]

    def _cover(self, day: dt.date) -> None:
        if day - dt.timedelta(days=10) < self._first or day + dt.timedelta(days=10) > self._last:
            self._first = min(self._first, day - dt.timedelta(days=30))
            self._last = max(self._last, day + dt.timedelta(days=30))
            self._load()

    def between(self, start: dt.date, end: dt.date) -> list[Session]:
        """Sessions dated from ``start`` to ``end`` inclusive."""
        self._cover(start)
        self._cover(end)
        return [s for s in self._list if start <= s.date <= end]

    def next_after(self, t: dt.datetime) -> Session:
        """The first session whose close is after ``t`` (naive New York): the one trading at
        ``t`` or the next to open."""
        self._cover(t.date())
        i = bisect.bisect_right(self._closes, t)
        return self._list[i]

    def close_of(self, day: dt.date) -> dt.datetime:
        """The close of ``day``'s session (16:00 if ``day`` is not a session), naive NY."""
        self._cover(day)
        found = self.by_date.get(day)
        return found.close if found else dt.datetime.combine(day, dt.time(16, 0))
