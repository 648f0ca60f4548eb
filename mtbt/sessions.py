"""NYSE sessions from exchange_calendars (XNYS): opens, closes and early closes.

Everything here speaks America/New_York wall-clock time, which is also the clock
of every bar inside backtrader (see ``feeds.arrays``).
"""
from __future__ import annotations

import datetime as dt
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache

NY = "America/New_York"


@dataclass(frozen=True)
class Session:
    """One trading session: its date and its open and close as naive New York times."""

    date: dt.date
    open: dt.datetime
    close: dt.datetime

    def minutes_before_close(self, minutes: int) -> dt.datetime:
        """The time ``minutes`` before this session's close (15:45 on a normal day for 15)."""
        return self.close - dt.timedelta(minutes=minutes)


@lru_cache(maxsize=8)
def _calendar(first_year: int, last_year: int):
    import exchange_calendars as xcals

    with warnings.catch_warnings():   # exchange_calendars 4.13 on pandas 3.1: Series.values
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return xcals.get_calendar("XNYS", start=f"{first_year}-01-01",
                                  end=f"{last_year}-12-31")


@lru_cache(maxsize=8)
def _all_sessions(first_year: int, last_year: int) -> tuple[list[dt.date], list[Session]]:
    """Every session of the calendar's years, in order (built once: slicing the schedule
    and converting time zones for each call cost about 25 ms)."""
    sched = _calendar(first_year, last_year).schedule
    opens = sched["open"].dt.tz_convert(NY).dt.tz_localize(None)
    closes = sched["close"].dt.tz_convert(NY).dt.tz_localize(None)
    items = [Session(day.date(), o.to_pydatetime(), c.to_pydatetime())
             for day, o, c in zip(sched.index, opens, closes, strict=True)]
    return [s.date for s in items], items


def sessions(start: dt.date, end: dt.date) -> dict[dt.date, Session]:
    """All XNYS sessions from ``start`` to ``end`` inclusive, keyed by date."""
    days, items = _all_sessions(start.year, end.year)
    return {s.date: s for s in items[bisect_left(days, start):bisect_right(days, end)]}
