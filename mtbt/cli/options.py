"""``mtbt options ...``: option tools (``calibrate``: fit the synthetic chain to recorded trades).

A thin wrapper over :mod:`mtbt.options.calibrate`: this module reads the files (the options
bar store, the underlying's minutes, the daily VIX) with :mod:`feeds`, prints the tables and
writes the TOML snippet. Every problem a user can fix is a :class:`~mtbt.errors.MtbtError`
(one line on stderr, exit 2).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from mtbt.cli._common import Formatter, add_data_option, add_out, add_overrides, add_run, load

_CALIBRATE_EPILOG = """\
Observations are the contract-minutes with a trade (the minute's VWAP, else its close) whose
moneyness z0 = ln(K/S) / (VIX/100 * sqrt(t)), in expected moves at IV = the prior VIX close
on the chain's trading-time clock, lies within --band. S is the underlying's bar of that
minute ((open+high+low+close)/4) where --data covers the session; elsewhere it is the forward
from put-call parity (C - P = F - K at a zero rate): a call and a put trade of one strike and
expiry at most --pair-minutes apart give one estimate, estimates of a minute are combined by
their median and interpolated in time, and minutes farther than --max-gap minutes from every
estimate are dropped. The fit is weighted least squares on prices (weights 1 / the trade's
expected miss of the mid: sqrt(trades, at most 10) / max(half_spread_pct x price, tick);
soft-L1 loss), within the [options] keys' ranges; it starts from, and compares with, the run
file's [options] values (the defaults without one)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``options`` command and its subcommands to the top-level parser."""
    options = sub.add_parser("options", help="option tools: calibrate the synthetic chain",
                             description="Option tools: fit the synthetic chain's settings "
                                         "to recorded option prices.")
    options_sub = options.add_subparsers(dest="options_command", metavar="SUBCOMMAND",
                                         required=True)
    cal = options_sub.add_parser(
        "calibrate", help="fit [options] atm_iv_ratio, skew and smile to recorded trades",
        description="Fit the synthetic chain's atm_iv_ratio, skew and smile to the option\n"
                    "trades of an options bar store near the money; print the error per\n"
                    "moneyness bucket before and after, and write the fitted [options] keys\n"
                    "as a TOML snippet.",
        epilog=_CALIBRATE_EPILOG, formatter_class=Formatter)
    add_run(cal, help="run file whose [options] values are the model before the fit "
                      "(default: built-in)")
    add_overrides(cal)
    cal.add_argument("--options", required=True, metavar="DIR",
                     help="options bar store (holds <SYMBOL>/<YYYY-MM-DD>.parquet)")
    add_data_option(cal, "data", help="the underlying's 1-minute bars (default: data.bars; "
                                      "without them the spot comes from put-call parity)")
    add_data_option(cal, "vix", help="daily VIX closes (default: data.vix; required)")
    add_data_option(cal, "start", help="first session to use (default: the store's first)")
    add_data_option(cal, "end", help="last session to use (default: the store's last)")
    cal.add_argument("--symbol", default="SPY", help="the underlying (default: SPY)")
    cal.add_argument("--band", type=_positive, default=2.0, metavar="Z",
                     help="keep strikes with |z0| <= Z expected moves (default: 2)")
    cal.add_argument("--pair-minutes", type=int, default=3, metavar="N",
                     help="parity: a call and a put trade at most N minutes apart (default: 3)")
    cal.add_argument("--max-gap", type=_positive, default=30.0, metavar="MIN",
                     help="parity: drop minutes farther than MIN from every estimate "
                          "(default: 30)")
    cal.add_argument("--min-obs", type=int, default=30, metavar="N",
                     help="fewest observations to fit (default: 30)")
    add_out(cal, "print it", what="TOML snippet", metavar="FILE")
    cal.set_defaults(func=cmd_calibrate)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run ``options calibrate``: load, observe, fit, print; returns the exit code."""
    import pandas as pd

    from feeds.options_store import OptionStore
    from mtbt.options.calibrate import CalibrationError, fit_chain
    from mtbt.runner import chain_model

    cfg = load(args)
    before = chain_model(cfg)
    store = OptionStore(args.options, args.symbol)
    days = _days(store, cfg.data.start, cfg.data.end, args.options)
    vix = _vix(cfg.data.vix, days)
    spot = _underlying(cfg.data.bars, cfg.data.bar_label)
    parts = [_observe(store, day, vix[day], spot, args) for day in days]
    obs = pd.concat([p.frame for p in parts], ignore_index=True)
    for line in _session_lines(parts, args):
        print(line)
    if len(obs) < args.min_obs:
        raise CalibrationError(
            f"{args.options}: {len(obs)} observation(s) within |z0| <= {args.band:g} in "
            f"{len(days)} session(s): too few to fit (the minimum is {args.min_obs}; widen "
            "--band, add sessions or lower --min-obs)")
    fit = fit_chain(obs, before, min_observations=args.min_obs)
    _print_fit(fit, obs, args.band)
    snippet = _snippet(fit, obs, parts, args, cfg)
    if args.out:
        Path(args.out).write_text(snippet)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(snippet)
    return 0


def _days(store, start: dt.date | None, end: dt.date | None, root: str) -> list[dt.date]:
    from mtbt.options.calibrate import CalibrationError

    days = [d for d in store.days if (start is None or d >= start) and (end is None or d <= end)]
    if not days:
        where = store.root / store.underlying
        span = "" if start is None and end is None else \
            f" between {start or 'the start'} and {end or 'the end'}"
        raise CalibrationError(f"{where}: no sessions{span} (no <YYYY-MM-DD>.parquet files; "
                               f"see `python -m mtbt data fetch {store.underlying} --options`)")
    return days


def _vix(path: str, days: list[dt.date]) -> dict[dt.date, float]:
    """The prior session's VIX close for each day (the only one the chain may see)."""
    import numpy as np
    import pandas as pd

    from feeds.parquet import read_daily
    from feeds.vix import vix_asof
    from mtbt.errors import ConfigError, DataError

    if not path:
        raise ConfigError("options calibrate needs the daily VIX closes: --vix VIX.parquet "
                          "(or data.vix in the run file)")
    closes = vix_asof(pd.DatetimeIndex(days), read_daily(path), source=path)
    missing = [d for d, v in zip(days, closes, strict=True) if np.isnan(v)]
    if missing:
        raise DataError(f"{path}: no VIX close before {missing[0]} (the chain uses the prior "
                        "session's close)")
    return dict(zip(days, map(float, closes), strict=True))


def _underlying(path: str, bar_label: str):
    """The underlying's price per minute, (open+high+low+close)/4, or None without a file."""
    if not path:
        return None
    from feeds.parquet import read_bars

    bars = read_bars(path, bar_label=bar_label)
    return bars[["open", "high", "low", "close"]].mean(axis=1)


def _observe(store, day: dt.date, vix: float, spot, args: argparse.Namespace):
    from mtbt.options.calibrate import CalibrationError, session_observations
    from mtbt.sessions import sessions

    session = sessions(day, day).get(day)
    if session is None:
        raise CalibrationError(f"{store.path(day)}: {day} is not an NYSE session")
    try:
        return session_observations(store.bars(day), session, vix, spot, band=args.band,
                                    pair_minutes=args.pair_minutes,
                                    max_gap_minutes=args.max_gap)
    except CalibrationError as exc:
        raise CalibrationError(f"{store.path(day)}: {exc} (give --data with the "
                               f"underlying's minutes of {day})") from None


def _session_lines(parts, args: argparse.Namespace) -> list[str]:
    lines = []
    for p in parts:
        if p.spot_source == "parity":
            strikes = ", ".join(f"{k:g}" for k in p.pair_strikes)
            spot = (f"spot: put-call parity forward from {p.pairs} call/put pair(s) at strike(s) "
                    f"{strikes} (trades <= {args.pair_minutes} min apart, F = C - P + K; "
                    f"{p.no_spot} minute(s) > {args.max_gap:g} min from a pair dropped)")
        else:
            spot = f"spot: underlying bars ({p.no_spot} minute(s) without one dropped)"
        lines.append(f"{p.day}: VIX(prior) {p.frame['vix'].iloc[0] if len(p.frame) else 0:.2f}, "
                     f"{p.traded} traded contract-minutes, {len(p.frame)} kept "
                     f"(|z0| <= {args.band:g}); {p.after_close} at/after the close, "
                     f"{p.outside_band} outside the band; {spot}")
    return lines


def _print_fit(fit, obs, band: float) -> None:
    from mtbt.cli._console import print_table
    from mtbt.options.calibrate import FIT_KEYS, error_table

    table = error_table(obs, {"before": fit.before, "after": fit.after}, band)
    body = [[str(r["z0"]), str(r["n"]),
             *(f"{r[c]:.3f}" if r["n"] else "-" for c in table.columns[2:])]
            for _, r in table.iterrows()]
    notes = [f"{k}: {getattr(fit.before, k):.4f} -> {getattr(fit.after, k):.4f} "
             f"(+/- {fit.stderr[k]:.4f}){' AT ITS BOUND' if k in fit.at_bound else ''}"
             for k in FIT_KEYS]
    notes.append(f"weighted loss per observation {fit.loss_before:.3f} -> "
                 f"{fit.loss_after:.3f} ({fit.message})")
    empty = [str(r["z0"]) for _, r in table.iterrows() if not r["n"]]
    if empty:
        notes.append(f"no trades in {', '.join(empty)}: the fit there is the model's "
                     "extrapolation from the other buckets")
    later = int((obs["expiry"].map(str) > obs["day"].map(str)).sum())
    if later:
        notes.append(f"{later} observation(s) expire after their session: the chain's clock "
                     "counts trading minutes only, so the fitted ratio also carries what the "
                     "market charges for the nights, weekends and holidays before expiry")
    print_table("option mid vs trade by moneyness z0 (median |model - trade| $/share, median "
                "model/trade)", list(table.columns), body, notes)


def _snippet(fit, obs, parts, args: argparse.Namespace, cfg) -> str:
    """The ``[options]`` TOML snippet with a comment on the data it was fitted to."""
    from mtbt.config import Options
    from mtbt.options.calibrate import FIT_KEYS, error_table

    values = {k: float(f"{v:.4f}") if _valid(Options, k, float(f"{v:.4f}")) else v
              for k, v in fit.values().items()}     # 4 decimals, unless that breaks a range
    parity = [str(p.day) for p in parts if p.spot_source == "parity"]
    spots = (f"put-call parity forward ({len(parity)} session(s))" if parity else "") + \
        (" and " if parity and len(parity) < len(parts) else "") + \
        (f"underlying bars {cfg.data.bars}" if len(parity) < len(parts) else "")
    overall = error_table(obs, {"before": fit.before, "after": fit.after}, args.band).iloc[-1]
    lines = [
        f"# mtbt options calibrate, {dt.date.today()}: {args.symbol} option trades of "
        f"{parts[0].day}..{parts[-1].day} ({len(parts)} session(s)) from {args.options}",
        f"# {len(obs)} contract-minutes with |z0| <= {args.band:g} expected moves; spot: "
        f"{spots}; VIX: {cfg.data.vix} (prior close)",
        f"# median |model - trade| ${overall['before |err| $']:.3f} before "
        f"({', '.join(f'{k} {getattr(fit.before, k):g}' for k in FIT_KEYS)}), "
        f"${overall['after |err| $']:.3f} after",
        "# merge into the run file's [options] section (its other keys stay as they are)",
        "[options]",
        *(f"{k} = {values[k]!r}" for k in FIT_KEYS),
    ]
    return "\n".join(lines) + "\n"


def _valid(options, key: str, value: float) -> bool:
    from pydantic import ValidationError

    try:
        options(**{key: value})
    except ValidationError:
        return False
    return True
