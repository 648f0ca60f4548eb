"""What a paper session traded on, kept in its log dir so a backtest can rerun it exactly.

At the end of a session (and when it stops on an error) ``SessionRecord.write`` puts beside
the session's other files (SESSION = PAPER_YYYYMMDD_HHMMSS):

- ``bars_<SESSION>.parquet``: every 1-minute bar the feed delivered, the warm-up history and
  the live day (the bar contract of ``feeds/parquet.py``: ``timestamp`` tz-aware New York,
  the bar's start; ``open, high, low, close, volume``);
- ``vix_<SESSION>.parquet``: the daily VIX closes it had (``read_daily`` form), from a month
  before the first bar to the day;
- ``run_<SESSION>.toml``: the resolved run, every key written out, so ``load_run`` rebuilds
  the same ``RunConfig`` (the same ``run_id``);
- ``record_<SESSION>.json``: what the three are (the day, the run's name and id, the bars'
  span, how the session ended, what it resumed); written last, so it names files that exist.

Each is written through a temporary file (``atomic_write``). A session killed outright
writes none: its restart backfills the day from the open and records it all.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import backtrader as bt
import pandas as pd

from analyzers.report import atomic_write
from mtbt.config import RunConfig, load_run
from mtbt.errors import DataError
from mtbt.live.logs import SessionFiles
from mtbt.sessions import NY

log = logging.getLogger("mtbt.live")

_OHLCV = ("open", "high", "low", "close", "volume")
_VIX_LEAD = dt.timedelta(days=31)        # VIX closes kept before the first bar's day


class SessionRecord:
    """Writes a session's record (module docstring) once the feed is ``attach``-ed."""

    def __init__(self, files: SessionFiles, cfg: RunConfig, *, dry_run: bool = False) -> None:
        self.files, self.cfg, self.dry_run = files, cfg, dry_run
        self.data = None
        self.day: dt.date | None = None
        self.resumed: dict = {}
        self.written = False

    def attach(self, data, day: dt.date, resume: dict | None = None) -> None:
        """The session's feed (``AlpacaData``), the day it trades and the checkpoint it
        resumed (None: a fresh start)."""
        self.data, self.day = data, day
        risk = (resume or {}).get("risk", {})
        self.resumed = {} if not resume else {
            "same_day": resume.get("day") == day.isoformat(),
            "realized": risk.get("realized"), "paused": risk.get("paused"),
            "tripped": risk.get("tripped"), "open_trades": len(resume.get("lots", [])),
            "edge_samples": sum(len(s) for s in resume.get("edge", []))}

    def write(self, stopped_by: str) -> None:
        """Write the record now (at most once); nothing before the feed is attached."""
        if self.written or self.data is None:
            return
        self.written = True
        bars = delivered_bars(self.data)
        if bars.empty:
            log.info("no bar delivered: no record of the session's bars")
            return
        f = self.files
        paths = {"bars": f.path("bars", ".parquet"), "vix": f.path("vix", ".parquet"),
                 "run_file": f.path("run", ".toml")}
        _atomic_bytes(paths["bars"], _parquet(bars))
        _atomic_bytes(paths["vix"], _parquet(_vix_frame(self.data.p.vix, bars)))
        atomic_write(paths["run_file"], run_toml(self.cfg, f.session))
        atomic_write(f.path("record", ".json"),
                     json.dumps(self._manifest(bars, paths, stopped_by), indent=2) + "\n")
        log.info("recorded %d bar(s) from %s to %s in %s", len(bars),
                 bars["timestamp"].iloc[0], bars["timestamp"].iloc[-1], paths["bars"].name)

    def write_on_error(self) -> None:
        """From the session's ``finally``: the record of a session that stopped on an
        error (the one being raised; logged, never raised over it)."""
        if self.written or self.data is None:
            return
        error = sys.exc_info()[1]
        try:
            self.write(f"error: {type(error).__name__}" if error else "error")
        except Exception:                  # noqa: BLE001 - the session's own error wins
            log.exception("the session's record could not be written")

    def _manifest(self, bars: pd.DataFrame, paths: dict, stopped_by: str) -> dict:
        days = bars["timestamp"].dt.date
        cfg, session = self.cfg, self.data.p.session
        last = bars["timestamp"].iloc[-1].tz_localize(None)
        return {"session": self.files.session, "day": self.day.isoformat(),
                "symbol": cfg.strategy.symbol, "instrument": cfg.strategy.instrument,
                "run": {"name": cfg.name, "source": cfg.source, "run_id": cfg.run_id},
                **{k: p.name for k, p in paths.items()},
                "bar_count": len(bars), "day_bars": int((days == self.day).sum()),
                "sessions_before": int(days[days < self.day].nunique()),
                "first_bar": bars["timestamp"].iloc[0].isoformat(),
                "last_bar": bars["timestamp"].iloc[-1].isoformat(),
                "complete": bool(last + dt.timedelta(minutes=1) >= session.close),
                "stopped_by": stopped_by, "dry_run": self.dry_run, "resumed": self.resumed,
                "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def delivered_bars(data) -> pd.DataFrame:
    """The bars a backtrader feed has delivered so far, in the bar contract (New York
    timestamps of the bar's start)."""
    n = len(data)
    lines = data.lines
    stamps = [bt.num2date(x) for x in lines.datetime.array[:n]]
    index = pd.DatetimeIndex(stamps).round("s").tz_localize(NY)
    frame = pd.DataFrame({"timestamp": index})
    for name in _OHLCV:
        frame[name] = list(getattr(lines, name).array[:n])
    return frame


def _vix_frame(vix: pd.Series, bars: pd.DataFrame) -> pd.DataFrame:
    """The closes from a month before the first bar's day through the last bar's day."""
    first = bars["timestamp"].iloc[0].tz_localize(None).normalize() - _VIX_LEAD
    last = bars["timestamp"].iloc[-1].tz_localize(None).normalize()
    kept = vix[(vix.index >= first) & (vix.index <= last)]
    return pd.DataFrame({"timestamp": kept.index, "close": kept.to_numpy(dtype=float)})


def _parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out, index=False)
    return out.getvalue()


def _atomic_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` for bytes."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


# -- the run file -------------------------------------------------------------------------

def run_toml(cfg: RunConfig, session: str = "") -> str:
    """``cfg`` as a complete TOML run file (every key; ``None`` keys left at their default
    of none), which ``load_run`` reads back to the same run (the same ``run_id``)."""
    lines = [f"# the run of paper session {session}: {cfg.name} ({cfg.source}), run_id "
             f"{cfg.run_id}", "# every key as the session resolved it (python -m mtbt compare "
             "reruns it)"]
    for section, values in cfg.as_dict().items():
        if section in ("name", "source"):
            continue
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()
                  if value is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no TOML form")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)               # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


# -- reading a record back ------------------------------------------------------------------

@dataclass(frozen=True)
class Recorded:
    """A session's record, read back: its manifest and the paths of its files."""

    session: str
    day: dt.date
    manifest: dict
    bars: Path
    vix: Path
    run_file: Path

    def run(self, overrides: Sequence[str] = ()) -> RunConfig:
        """The session's run, rebuilt from its run file (checked against the recorded
        ``run_id``), with its own name and source; then ``overrides`` (``--set`` form)."""
        cfg = load_run(self.run_file)
        want = self.manifest["run"]
        if cfg.run_id != want["run_id"]:
            raise DataError(f"{self.run_file}: rebuilds run_id {cfg.run_id}, but the session "
                            f"ran {want['run_id']} ({self.manifest_path.name})")
        if overrides:
            cfg = load_run(self.run_file, overrides)
        return cfg.model_copy(update={"name": want["name"], "source": want["source"]})

    @property
    def manifest_path(self) -> Path:
        return self.bars.with_name(f"record_{self.session}.json")


def read_record(folder: str | Path, session: str) -> Recorded:
    """The record of ``session`` in ``folder``; ``DataError`` naming the file that is
    missing or unreadable (a session from before mtbt recorded its bars has none)."""
    folder = Path(folder)
    path = folder / f"record_{session}.json"
    bars = folder / f"bars_{session}.parquet"
    if not path.is_file():
        raise DataError(f"{bars}: not found: session {session} has no recorded bars (a "
                        "session from before mtbt recorded them, or one killed and not "
                        "restarted that day); compare fewer --days")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        day = dt.date.fromisoformat(manifest["day"])
        files = {k: folder / manifest[k] for k in ("bars", "vix", "run_file")}
        manifest["run"]["run_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a session record ({type(exc).__name__}: {exc})") from None
    for what, file in files.items():
        if not file.is_file():
            raise DataError(f"{file}: not found ({path.name} names it as the session's "
                            f"{what.replace('_', ' ')})")
    return Recorded(session, day, manifest, files["bars"], files["vix"], files["run_file"])
