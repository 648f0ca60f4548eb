"""Pure, bar-by-bar state machines behind mtbt's stateful indicators.

Each kernel's ``step`` takes one bar's inputs and returns that bar's outputs. An indicator's
``next()`` (event mode, live trading) and ``once()`` (vectorised backtests) both call the same
``step``, so the two modes cannot disagree; tests can also drive a kernel directly.
Times are backtrader date numbers (days since 0001-01-01 plus the fraction of the day) on the
New York wall clock; bars are labelled by their start.
"""
from __future__ import annotations

import math
from collections import deque

NAN = math.nan
SESSION_OPEN_MINUTE = 9 * 60 + 30

# How far back state reaches (see ``SessionBarsKernel`` and ``RenkoKernel``): ATRs and EMAs
# see the completed bars of the last WINDOW_SESSIONS sessions, the Renko grid the last
# GRID_SESSIONS. A run with at least that much history before a day D ([data]
# warmup_sessions, 20 by default; the paper trader backfills as much) computes identical
# indicators, hence identical signals, on D wherever its data starts.
WINDOW_SESSIONS = 20
GRID_SESSIONS = 1

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

    **Bounded memory.** Both are computed over the completed bars of a window of sessions: at
    a bar of session D, the bars of sessions D - ``window`` .. D (the window moves at each
    session's first bar; the first bar in it has no true range, its predecessor being outside).
    A recursive average seeded at the data's first bar would depend, however faintly, on where
    the data starts; seeded at the window's first bar it is a function of the window's bars
    alone, so any run with ``window`` sessions of history before D computes, bit for bit, the
    same values on D. At each session's first bar the state is rebuilt from the window's bars
    (a few dozen for "1d" and "4h"); within a session it is updated incrementally, the same
    operations in the same order.
    """

    __slots__ = ("minutes", "atr_period", "ema_period", "window", "day", "days", "key", "cur",
                 "cur_day", "bars", "prev_close", "trs", "atr", "closes", "ema", "out")

    def __init__(self, minutes: int, atr_period: int, ema_period: int,
                 window: int = WINDOW_SESSIONS):
        if window < 1:
            raise ValueError(f"window must be at least 1 session, got {window}")
        self.minutes, self.atr_period, self.ema_period = minutes, atr_period, ema_period
        self.window = window
        self.day = None
        self.days: deque[int] = deque()   # sessions of the window (this one and `window` more)
        self.key = None
        self.cur = None          # [open, high, low, close, volume] of the forming bucket
        self.cur_day = None      # the session of the forming bucket
        self.bars: deque[tuple[int, list[float]]] = deque()   # completed, in the window
        self.out = (NAN,) * 7 + (0.0,)
        self._restart()

    def _restart(self) -> None:
        self.prev_close = NAN
        self.trs: list[float] = []
        self.atr = NAN
        self.closes: list[float] = []
        self.ema = NAN

    def step(self, dtnum: float, o: float, h: float, lo: float, c: float, v: float) -> tuple:
        key = bucket_key(dtnum, self.minutes)
        cur = self.cur
        if key != self.key:
            day = int(dtnum)
            if day != self.day:
                self._new_session(day)
            if cur is not None:
                self._complete(cur)
            self.key, self.cur, self.cur_day = key, [o, h, lo, c, v], day
        else:
            if h > cur[1]:
                cur[1] = h
            if lo < cur[2]:
                cur[2] = lo
            cur[3] = c
            cur[4] += v
        return self.out

    def _new_session(self, day: int) -> None:
        """Move the window to end at ``day``: drop the bars of the session that left it and
        rebuild ATR and EMA from the bars that remain."""
        self.day = day
        days = self.days
        days.append(day)
        if len(days) <= self.window + 1:
            return                       # nothing leaves the window yet
        days.popleft()
        first, bars = days[0], self.bars
        while bars and bars[0][0] < first:
            bars.popleft()
        self._restart()
        for _, bar in bars:
            self._update(bar)

    def _complete(self, bar: list[float]) -> None:
        self.bars.append((self.cur_day, bar))
        self._update(bar)
        self.out = (*bar, self.atr, self.ema, float(len(self.bars)))

    def _update(self, bar: list[float]) -> None:
        prev, close = self.prev_close, bar[3]
        if prev == prev:                 # not NaN: the bar before is in the window
            self._update_atr(max(bar[1], prev) - min(bar[2], prev))
        self.prev_close = close
        self._update_ema(close)

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
    """Renko bricks on closes with a brick size that follows an ATR, on a grid anchored anew
    at each session.

    A brick of the current direction forms each time the close moves one brick beyond the last
    brick's close; a reversal needs two bricks (the first reversal brick spans the far half of
    the last brick's range, as in classic Renko). Outputs: direction (+1/-1, 0 before the first
    brick), bricks in the current run, last brick close, origin (the open of the run's first
    brick), brick size and the number of bricks since the grid's anchor.

    **The grid.** At each session's first bar the chart is drawn afresh with that bar's brick
    size ``mult * atr``: anchored at the open of the session ``grid_sessions`` sessions back
    and replayed over the closes of those earlier sessions (0: anchored at today's open), then
    continued bar by bar. A grid carried from the data's first bar, with each day's bricks
    added at a different size, would make today's bricks depend on where the data starts; this
    one is a function of the last ``grid_sessions`` sessions and today. Within the session the
    size follows the ATR (it changes only with a timeframe shorter than the session). When the
    size is not known at the first bar (no warm-up) the grid starts at the first close that
    has one.
    """

    __slots__ = ("mult", "grid_sessions", "day", "day_end", "history", "today", "record",
                 "anchor", "direction", "run", "origin", "count", "size", "out")

    def __init__(self, mult: float, grid_sessions: int = GRID_SESSIONS):
        if grid_sessions < 0:
            raise ValueError(f"grid_sessions must be 0 or more, got {grid_sessions}")
        self.mult = mult
        self.grid_sessions = grid_sessions
        self.day = None
        self.day_end = -math.inf         # a bar at or after it starts a new session
        # (first open, closes) of the last grid_sessions sessions, and of this one so far
        self.history: deque[tuple[float, list[float]]] = deque(maxlen=grid_sessions or 1)
        self.today: tuple[float, list[float]] | None = None
        self.record = None               # appends a close to today's (when it is kept)
        self.size = NAN
        self._reset(NAN)

    def _reset(self, anchor: float) -> None:
        self.anchor = anchor
        self.direction = 0
        self.run = 0
        self.origin = NAN
        self.count = 0
        self.out = self.outputs()

    def step(self, dtnum: float, o: float, close: float, atr: float) -> tuple:
        if dtnum >= self.day_end:
            self.begin(int(dtnum), o, atr)
        return self.bar(close, atr)

    def begin(self, day: int, o: float, atr: float, trace: bool = False) -> list[tuple]:
        """A new session from a bar opening at ``o``: redraw the grid. With ``trace``,
        returns the replayed earlier closes, each with the outputs it gives on the new grid
        (``WaveKernel`` replays its waves over them)."""
        if self.today is not None and self.grid_sessions:
            self.history.append(self.today)
        self.day, self.day_end = day, day + 1.0
        if self.grid_sessions:
            self.today = (o, [])
            self.record = self.today[1].append
        replayed: list[tuple] = []
        if not atr > 0.0:                # no brick size yet: the grid starts when one is known
            self._reset(NAN)
            return replayed
        b = self.size = self.mult * atr
        past = list(self.history) if self.grid_sessions else []
        self._reset(past[0][0] if past else o)
        out = self.out
        for _, closes in past:
            for c in closes:
                p = self.anchor
                if not p - b < c < p + b:        # else no brick can form (as in ``bar``)
                    self._advance(c, b)
                    out = self.out = self.outputs()
                if trace:
                    replayed.append((c, out))
        return replayed

    def bar(self, close: float, atr: float) -> tuple:
        """This session's next close."""
        if self.record is not None:
            self.record(close)
        if not atr > 0.0:   # also NaN: no brick size known yet
            return self.out
        b = self.mult * atr
        p = self.anchor
        if b != self.size or not p - b < close < p + b:    # else: no brick can form
            self.size = b
            if math.isnan(p):
                self.anchor = close
            self._advance(close, b)
            self.out = self.outputs()
        return self.out

    def outputs(self) -> tuple:
        return (float(self.direction), float(self.run), self.anchor, self.origin, self.size,
                float(self.count))

    def _advance(self, close: float, b: float) -> None:
        d, p = self.direction, self.anchor
        if d >= 0 and close >= p + b:
            self._bricks(1, int((close - p) / b), p, b, continuing=d == 1)
        elif d <= 0 and close <= p - b:
            self._bricks(-1, int((p - close) / b), p, b, continuing=d == -1)
        elif d == 1 and close <= p - 2.0 * b:
            self._bricks(-1, int((p - b - close) / b), p - b, b, continuing=False)
        elif d == -1 and close >= p + 2.0 * b:
            self._bricks(1, int((close - p - b) / b), p + b, b, continuing=False)

    def _bricks(self, d: int, n: int, start: float, b: float, continuing: bool) -> None:
        if continuing:
            self.run += n
        else:
            self.direction, self.run, self.origin = d, n, start
        self.anchor = start + d * n * b
        self.count += n


IMPULSE, PULLBACK, RESUMED = 1, 2, 3
GRADE_SHALLOW, GRADE_HEALTHY, GRADE_DEEP = 1, 2, 3
_QUIET = (0.0, 0.0, NAN, NAN)        # no wave: no signal, no retracement
GRADE_NAMES = {GRADE_SHALLOW: "shallow", GRADE_HEALTHY: "healthy", GRADE_DEEP: "deep"}


def grade_retracement(retrace: float, shallow_max: float, healthy_max: float) -> int:
    """1 shallow (< shallow_max), 2 healthy (<= healthy_max), 3 deep (above)."""
    if retrace < shallow_max:
        return GRADE_SHALLOW
    return GRADE_HEALTHY if retrace <= healthy_max else GRADE_DEEP


class WaveKernel:
    """Impulse, pullback and resumption on top of Renko bricks (see ``indicators.wave``).

    ``step`` takes the bar (time, open, close) and the ATR that sizes the bricks, and draws the
    bricks with its own ``RenkoKernel`` (the Renko indicator's kernel on the same inputs: the
    same bricks). At a session's first bar the grid is redrawn (``RenkoKernel.begin``) and the
    wave state is rebuilt by replaying ``advance`` over the redrawn bricks of the grid's
    earlier sessions, so the waves, like the bricks, depend on those sessions only.
    ``advance`` reads one bar's close and bricks (tests drive it directly).
    """

    __slots__ = ("renko", "impulse_bricks", "shallow_max", "healthy_max", "resume", "zone",
                 "phase", "dir", "start", "extreme", "pb_extreme", "run_id")

    def __init__(self, impulse_bricks: int, shallow_max: float, healthy_max: float,
                 resume_bricks: float, entry_zone_bricks: float, mult: float = 0.1,
                 grid_sessions: int = GRID_SESSIONS):
        self.renko = RenkoKernel(mult, grid_sessions)
        self.impulse_bricks = impulse_bricks
        self.shallow_max, self.healthy_max = shallow_max, healthy_max
        self.resume, self.zone = resume_bricks, entry_zone_bricks
        self._reset()

    def _reset(self) -> None:
        self.phase = 0
        self.dir = 0
        self.start = self.extreme = self.pb_extreme = NAN
        self.run_id = -1.0

    def step(self, dtnum: float, o: float, close: float, atr: float) -> tuple:
        """Returns (signal, grade, retracement, pullback extreme) for this bar."""
        renko = self.renko
        if dtnum >= renko.day_end:
            self._reset()
            for c, bricks in renko.begin(int(dtnum), o, atr, trace=True):
                self.advance(c, *bricks)
        return self.advance(close, *renko.bar(close, atr))

    def advance(self, close: float, direction: float, run: float, brick: float,
                origin: float, size: float, count: float) -> tuple:
        """This bar's (signal, grade, retracement, pullback extreme), from its close and the
        Renko kernel's outputs."""
        if run < self.impulse_bricks and self.phase == 0:
            return _QUIET
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
