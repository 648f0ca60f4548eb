"""Pure, bar-by-bar state machines behind mtbt's stateful indicators.

Each kernel's ``step`` takes one bar's inputs and returns that bar's outputs. An indicator's
``next()`` (event mode, live trading) and ``once()`` (vectorised backtests) both call the same
``step``, so the two modes cannot disagree; tests can also drive a kernel directly.
Times are backtrader date numbers (days since 0001-01-01 plus the fraction of the day) on the
New York wall clock; bars are labelled by their start.
"""
from __future__ import annotations

import math

NAN = math.nan
SESSION_OPEN_MINUTE = 9 * 60 + 30

TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 0}


def bucket_key(dtnum: float, minutes: int) -> int:
    """The higher-timeframe bar a minute bar belongs to.

    ``minutes == 0`` means the session (calendar day); otherwise buckets of ``minutes`` are
    aligned to the 09:30 open, so "4h" gives 09:30-13:30 and 13:30-16:00.
    """
    day = int(dtnum)
    if minutes == 0:
        return day
    minute_of_day = round((dtnum - day) * 1440.0)
    return day * 10_000 + (minute_of_day - SESSION_OPEN_MINUTE) // minutes


class SessionBarsKernel:
    """Aggregates minute bars into session-aligned bars; exposes the last *completed* one.

    A bucket completes when the first bar of the next bucket arrives, so nothing is read before
    the higher-timeframe bar is over. ATR is Wilder's (seeded with the mean of the first
    ``atr_period`` true ranges, as backtrader's ``ATR``) and the EMA is seeded with an SMA (as
    backtrader's ``EMA``); both over completed bars only.
    """

    __slots__ = ("minutes", "atr_period", "ema_period", "key", "cur", "last", "count",
                 "trs", "atr", "closes", "ema", "out")

    def __init__(self, minutes: int, atr_period: int, ema_period: int):
        self.minutes, self.atr_period, self.ema_period = minutes, atr_period, ema_period
        self.key = None
        self.cur = None          # [open, high, low, close, volume] of the forming bucket
        self.last = None         # the last completed bucket
        self.count = 0
        self.trs: list[float] = []
        self.atr = NAN
        self.closes: list[float] = []
        self.ema = NAN
        self.out = (NAN,) * 7 + (0.0,)

    def step(self, dtnum: float, o: float, h: float, lo: float, c: float, v: float) -> tuple:
        key = bucket_key(dtnum, self.minutes)
        cur = self.cur
        if key != self.key:
            if cur is not None:
                self._complete(cur)
            self.key, self.cur = key, [o, h, lo, c, v]
        else:
            if h > cur[1]:
                cur[1] = h
            if lo < cur[2]:
                cur[2] = lo
            cur[3] = c
            cur[4] += v
        return self.out

    def _complete(self, bar: list[float]) -> None:
        prev = self.last
        self.last, self.count = bar, self.count + 1
        if prev is not None:
            self._update_atr(max(bar[1], prev[3]) - min(bar[2], prev[3]))
        self._update_ema(bar[3])
        self.out = (*bar, self.atr, self.ema, float(self.count))

    def _update_atr(self, tr: float) -> None:
        p = self.atr_period
        if math.isnan(self.atr):
            self.trs.append(tr)
            if len(self.trs) == p:
                self.atr = math.fsum(self.trs) / p
        else:
            self.atr = self.atr + (tr - self.atr) / p

    def _update_ema(self, close: float) -> None:
        p = self.ema_period
        if math.isnan(self.ema):
            self.closes.append(close)
            if len(self.closes) == p:
                self.ema = math.fsum(self.closes) / p
        else:
            alpha = 2.0 / (p + 1.0)
            self.ema = self.ema * (1.0 - alpha) + close * alpha


class RenkoKernel:
    """Renko bricks on closes with a brick size that follows an ATR.

    A brick of the current direction forms each time the close moves one brick beyond the last
    brick's close; a reversal needs two bricks (the first reversal brick spans the far half of
    the last brick's range, as in classic Renko). The brick size is ``mult * atr`` at the bar
    that forms the brick. Outputs: direction (+1/-1, 0 before the first brick), bricks in the
    current run, last brick close, origin (the open of the run's first brick), brick size and
    the total number of bricks.
    """

    __slots__ = ("mult", "anchor", "direction", "run", "origin", "count", "size")

    def __init__(self, mult: float):
        self.mult = mult
        self.anchor = NAN
        self.direction = 0
        self.run = 0
        self.origin = NAN
        self.count = 0
        self.size = NAN

    def step(self, close: float, atr: float) -> tuple:
        if not atr > 0.0:   # also NaN: no brick size known yet
            return (float(self.direction), float(self.run), self.anchor, self.origin,
                    self.size, float(self.count))
        b = self.size = self.mult * atr
        if math.isnan(self.anchor):
            self.anchor = close
        d, p = self.direction, self.anchor
        if d >= 0 and close >= p + b:
            self._bricks(1, int((close - p) / b), p, b, continuing=d == 1)
        elif d <= 0 and close <= p - b:
            self._bricks(-1, int((p - close) / b), p, b, continuing=d == -1)
        elif d == 1 and close <= p - 2.0 * b:
            self._bricks(-1, int((p - b - close) / b), p - b, b, continuing=False)
        elif d == -1 and close >= p + 2.0 * b:
            self._bricks(1, int((close - p - b) / b), p + b, b, continuing=False)
        return (float(self.direction), float(self.run), self.anchor, self.origin, b,
                float(self.count))

    def _bricks(self, d: int, n: int, start: float, b: float, continuing: bool) -> None:
        if continuing:
            self.run += n
        else:
            self.direction, self.run, self.origin = d, n, start
        self.anchor = start + d * n * b
        self.count += n


IMPULSE, PULLBACK, RESUMED = 1, 2, 3
GRADE_SHALLOW, GRADE_HEALTHY, GRADE_DEEP = 1, 2, 3
GRADE_NAMES = {GRADE_SHALLOW: "shallow", GRADE_HEALTHY: "healthy", GRADE_DEEP: "deep"}


def grade_retracement(retrace: float, shallow_max: float, healthy_max: float) -> int:
    """1 shallow (< shallow_max), 2 healthy (<= healthy_max), 3 deep (above)."""
    if retrace < shallow_max:
        return GRADE_SHALLOW
    return GRADE_HEALTHY if retrace <= healthy_max else GRADE_DEEP


class WaveKernel:
    """Impulse, pullback and resumption on top of Renko bricks (see ``indicators.wave``)."""

    __slots__ = ("impulse_bricks", "shallow_max", "healthy_max", "resume", "zone",
                 "phase", "dir", "start", "extreme", "pb_extreme", "run_id")

    def __init__(self, impulse_bricks: int, shallow_max: float, healthy_max: float,
                 resume_bricks: float, entry_zone_bricks: float):
        self.impulse_bricks = impulse_bricks
        self.shallow_max, self.healthy_max = shallow_max, healthy_max
        self.resume, self.zone = resume_bricks, entry_zone_bricks
        self.phase = 0
        self.dir = 0
        self.start = self.extreme = self.pb_extreme = NAN
        self.run_id = -1.0

    def step(self, close: float, direction: float, run: float, origin: float,
             size: float, count: float) -> tuple:
        """Returns (signal, grade, retracement, pullback extreme) for this bar."""
        run_id = count - run
        if run >= self.impulse_bricks and run_id != self.run_id:
            self.run_id, self.phase, self.dir = run_id, IMPULSE, int(direction)
            self.start, self.extreme = origin, close
        if self.phase == 0:
            return 0.0, 0.0, NAN, NAN
        d = self.dir
        if d * (close - self.extreme) > 0.0:          # new extreme: the impulse extends
            self.extreme, self.phase = close, IMPULSE
            return 0.0, 0.0, NAN, NAN
        height = d * (self.extreme - self.start)
        if self.phase == IMPULSE:
            if d * (self.extreme - close) < size:     # not yet a brick off the extreme
                return 0.0, 0.0, NAN, NAN
            self.phase, self.pb_extreme = PULLBACK, close
        elif self.phase == RESUMED:
            return 0.0, 0.0, NAN, NAN
        elif d * (self.pb_extreme - close) > 0.0:
            self.pb_extreme = close
        retrace = d * (self.extreme - self.pb_extreme) / height
        if retrace >= 1.0:                            # gave back the whole impulse: wave over
            self.phase = 0
            return 0.0, 0.0, retrace, self.pb_extreme
        off = d * (close - self.pb_extreme)
        if off < self.resume * size:
            return 0.0, 0.0, retrace, self.pb_extreme
        self.phase = RESUMED
        if off > self.zone * size:                    # resumed too fast to chase
            return 0.0, 0.0, retrace, self.pb_extreme
        grade = grade_retracement(retrace, self.shallow_max, self.healthy_max)
        return float(d), float(grade), retrace, self.pb_extreme
