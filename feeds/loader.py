"""Everything a backtest reads, loaded and checked once: bars (+ their VIX) and provenance."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feeds.parquet import bar_interval, file_sha256, read_bars, read_daily, regular_hours
from feeds.sample import sample_bars, sample_vix
from feeds.vix import vix_asof
from mtbt.errors import DataError

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class MarketData:
    """Bars with a ``vix`` column, ready for ``feeds.arrays.BarFeed``.

    ``label`` is the bar file's path or ``"synthetic"``; ``sha256`` maps each input to the
    hash of its bytes; ``trade_from`` is the first session to trade (earlier bars only warm
    the indicators up).
    """

    bars: pd.DataFrame
    label: str
    sha256: dict[str, str] = field(default_factory=dict)
    trade_from: dt.date | None = None

    @property
    def synthetic(self) -> bool:
        return self.label == SYNTHETIC


def load_market_data(data_cfg) -> MarketData:
    """Load ``[data]``: the bar file and VIX file, or the embedded synthetic sample."""
    start = data_cfg.start
    if not data_cfg.bars:
        if data_cfg.vix:
            raise DataError(f"{data_cfg.vix}: a VIX file without bars (data.bars, --data): "
                            "the synthetic sample brings its own VIX; give the bars too, or "
                            "no VIX file")
        # the sample trades sample_sessions; warmup_sessions more come first for indicators
        n = data_cfg.sample_sessions + data_cfg.warmup_sessions
        bars = sample_bars(data_cfg.sample_seed, n)
        vix = sample_vix(data_cfg.sample_seed, n)
        if start is None:
            start = bars.index[0].date() if not data_cfg.warmup_sessions else (
                bars.index.normalize().unique()[data_cfg.warmup_sessions].date())
        digest = hashlib.sha256(np.ascontiguousarray(bars.to_numpy()).tobytes()).hexdigest()
        label, sha, vix_source = SYNTHETIC, {SYNTHETIC: digest}, "synthetic VIX"
    else:
        raw = read_bars(data_cfg.bars, bar_label=data_cfg.bar_label)
        minutes = bar_interval(raw.index) / pd.Timedelta(minutes=1)
        if minutes != 1:
            raise DataError(f"{data_cfg.bars}: bars are {minutes:g} minutes apart; "
                            "mtbt trades 1-minute bars")
        bars = regular_hours(raw)
        vix = read_daily(data_cfg.vix)
        label, vix_source = str(data_cfg.bars), str(data_cfg.vix)
        sha = {label: file_sha256(data_cfg.bars), vix_source: file_sha256(data_cfg.vix)}
    bars, trade_from = window(bars, label, start, data_cfg.end,
                               data_cfg.warmup_sessions)
    bars = bars.assign(vix=vix_asof(bars.index, vix, source=vix_source))
    _check_vix_covers(bars, vix, vix_source, trade_from)
    return MarketData(bars, label, sha, trade_from)


def _check_vix_covers(bars: pd.DataFrame, vix: pd.Series, source: str,
                      trade_from: dt.date | None) -> None:
    """Refuse a VIX file that starts too late for a traded session (warm-up sessions need
    none): each session's regime reads the prior session's close."""
    days = bars.index.tz_convert("America/New_York").date
    traded = days >= trade_from if trade_from is not None else np.ones(len(days), bool)
    missing = np.flatnonzero(traded & np.isnan(bars["vix"].to_numpy()))
    if missing.size:
        day = days[missing[0]]
        first = vix.dropna().index.min()
        starts = (f"the file starts {first:%Y-%m-%d}" if pd.notna(first)
                  else "the file holds no close")
        raise DataError(f"{source}: no VIX close before {day}, a traded session ({starts}); "
                        "use a VIX file that begins before the bars, or a later --start")


def window(bars: pd.DataFrame, label: str, start: dt.date | None, end: dt.date | None,
           warmup: int) -> tuple[pd.DataFrame, dt.date | None]:
    """Cut the bars to [start - warmup sessions, end]."""
    if bars.empty:
        raise DataError(f"{label}: no regular-session bars")
    days = bars.index.normalize().tz_localize(None)
    sessions = days.unique()
    first, last = sessions[0].date(), sessions[-1].date()
    lo = 0 if start is None else int(sessions.searchsorted(pd.Timestamp(start)))
    hi = len(sessions) if end is None else int(sessions.searchsorted(pd.Timestamp(end),
                                                                     side="right"))
    if lo >= hi:
        raise DataError(f"{label}: no sessions between {start or first} and {end or last} "
                        f"(the file covers {first} to {last})")
    keep = (days >= sessions[max(0, lo - warmup)]) & (days <= sessions[hi - 1])
    trade_from = sessions[lo].date() if start is not None else None
    return bars[keep], trade_from
