"""Paper trades against the backtest's on the same bars: which trades match, and what
each fill cost or saved (``compare_day``).

Both sides are trades.csv frames (one row per exit fill). A trade is a ``trade_id``'s rows
(trade ids differ between the venues: a paper run counts them over days). Trades match on
their entry time, side and instrument; failing that, the nearest paper entry of the same
side and instrument within ``window`` (an entry filled a bar late). Within a matched trade
the exits pair by exit reason (the k-th ``tp1`` with the k-th ``tp1``), then by time.

Slippage is paper minus backtest, signed so that **positive is worse for paper**: a buy
filled dearer, a sell cheaper. For an option structure the price is its premium per share
(a credit negative): the open is a purchase of the structure and the close a sale, whatever
the premium's sign. ``slip_pnl`` is what the slippage of a row's two fills cost in dollars
(``-(entry_slip + exit_slip) x qty x multiplier``), ``pnl_diff`` the whole PnL difference
(paper minus backtest; a missed row's is minus the backtest's PnL).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

COLUMNS = ("day", "status", "paper_trade", "backtest_trade", "instrument", "side",
           "paper_exit_reason", "backtest_exit_reason", "paper_qty", "backtest_qty",
           "paper_entry_time", "backtest_entry_time", "entry_delay_s", "paper_entry_price",
           "backtest_entry_price", "entry_slip", "entry_slip_bps", "paper_exit_time",
           "backtest_exit_time", "exit_delay_s", "paper_exit_price", "backtest_exit_price",
           "exit_slip", "exit_slip_bps", "slip_pnl", "paper_pnl", "backtest_pnl", "pnl_diff")
DIFF_COLUMNS = ("entry_delay_s", "entry_slip", "entry_slip_bps", "exit_delay_s", "exit_slip",
                "exit_slip_bps", "slip_pnl", "pnl_diff")
WINDOW = pd.Timedelta(minutes=5)


@dataclass
class _Trade:
    trade_id: int
    instrument: str
    side: str
    entry: pd.Timestamp
    rows: list[dict]

    @property
    def key(self) -> tuple:
        return self.entry, self.side, self.instrument


def compare_day(day: dt.date, paper: pd.DataFrame, backtest: pd.DataFrame,
                multiplier: float = 100.0, window: pd.Timedelta = WINDOW) -> pd.DataFrame:
    """One row per exit fill of either venue (``COLUMNS``): ``status`` "matched" (both
    have it), "missed" (the backtest only) or "extra" (paper only); see the module
    docstring for the signs. ``multiplier``: dollars per point of a structure's premium."""
    pairs, missed, extra = match_trades(_trades(paper), _trades(backtest), window)
    rows = []
    for p, b in pairs:
        for prow, brow in _pair_exits(p.rows, b.rows):
            rows.append(_row(day, p if prow else None, prow, b if brow else None, brow,
                             multiplier, trade_ids=(p.trade_id, b.trade_id)))
    rows += [_row(day, None, None, b, r, multiplier) for b in missed for r in b.rows]
    rows += [_row(day, p, r, None, None, multiplier) for p in extra for r in p.rows]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    order = frame["backtest_entry_time"].fillna(frame["paper_entry_time"])
    frame = frame.assign(_o=order, _x=frame["backtest_exit_time"].fillna(
        frame["paper_exit_time"]))
    return frame.sort_values(["_o", "_x"], kind="stable").drop(columns=["_o", "_x"]) \
        .reset_index(drop=True)


def _trades(rows: pd.DataFrame) -> list[_Trade]:
    out = []
    for tid, group in rows.groupby("trade_id", sort=False):
        group = group.sort_values("exit_time", kind="stable")
        first = group.iloc[0]
        out.append(_Trade(int(tid), str(first["instrument"]), str(first["side"]),
                          pd.Timestamp(first["entry_time"]), group.to_dict("records")))
    return out


def match_trades(paper: list[_Trade], backtest: list[_Trade], window: pd.Timedelta
                 ) -> tuple[list[tuple[_Trade, _Trade]], list[_Trade], list[_Trade]]:
    """(paired trades, backtest-only, paper-only): exact keys first, then the nearest
    entries of the same side and instrument within ``window``."""
    left_p, left_b, pairs = list(paper), list(backtest), []
    for b in backtest:
        p = next((p for p in left_p if p.key == b.key), None)
        if p is not None:
            pairs.append((p, b))
            left_p.remove(p)
            left_b.remove(b)
    near = sorted((abs(p.entry - b.entry), i, j) for i, p in enumerate(left_p)
                  for j, b in enumerate(left_b)
                  if (p.side, p.instrument) == (b.side, b.instrument)
                  and abs(p.entry - b.entry) <= window)
    used_p, used_b = set(), set()
    for _, i, j in near:
        if i not in used_p and j not in used_b:
            used_p.add(i)
            used_b.add(j)
            pairs.append((left_p[i], left_b[j]))
    return (pairs, [b for j, b in enumerate(left_b) if j not in used_b],
            [p for i, p in enumerate(left_p) if i not in used_p])


def _pair_exits(paper: list[dict], backtest: list[dict]) -> list[tuple[dict | None,
                                                                        dict | None]]:
    """Exit rows paired by reason (in order), the rest by time; unpaired rows alone."""
    left_p, pairs = list(paper), []
    left_b = []
    for b in backtest:
        p = next((p for p in left_p if p["exit_reason"] == b["exit_reason"]), None)
        if p is None:
            left_b.append(b)
        else:
            left_p.remove(p)
            pairs.append((p, b))
    n = min(len(left_p), len(left_b))
    pairs += list(zip(left_p[:n], left_b[:n], strict=True))
    pairs += [(p, None) for p in left_p[n:]] + [(None, b) for b in left_b[n:]]
    return pairs


def _row(day: dt.date, p: _Trade | None, prow: dict | None, b: _Trade | None,
         brow: dict | None, multiplier: float, trade_ids: tuple | None = None) -> dict:
    """One compare.csv row from a paper and/or a backtest exit row."""
    trade = b or p
    equity = trade.instrument == "equity"
    entry_sign = (1 if trade.side == "long" else -1) if equity else 1
    status = "matched" if prow and brow else ("missed" if brow else "extra")
    ids = trade_ids or (p.trade_id if p else None, b.trade_id if b else None)
    out = {"day": day.isoformat(), "status": status, "paper_trade": ids[0],
           "backtest_trade": ids[1], "instrument": trade.instrument, "side": trade.side}
    for venue, row in (("paper", prow), ("backtest", brow)):
        for key in ("exit_reason", "qty", "entry_time", "entry_price", "exit_time",
                    "exit_price", "pnl"):
            out[f"{venue}_{key}"] = row[key] if row else None
    out["pnl_diff"] = round((prow["pnl"] if prow else 0.0) - (brow["pnl"] if brow else 0.0),
                            2) + 0.0
    if not (prow and brow):
        return out
    for leg, sign in (("entry", entry_sign), ("exit", -entry_sign)):
        paid, ref = float(prow[f"{leg}_price"]), float(brow[f"{leg}_price"])
        slip = round((paid - ref) * sign, 6) + 0.0          # no -0.0
        out[f"{leg}_slip"] = slip
        out[f"{leg}_slip_bps"] = round(slip / abs(ref) * 1e4, 2) + 0.0 if ref else np.nan
        out[f"{leg}_delay_s"] = (pd.Timestamp(prow[f"{leg}_time"])
                                 - pd.Timestamp(brow[f"{leg}_time"])).total_seconds()
    qty = min(float(prow["qty"]), float(brow["qty"]))
    out["slip_pnl"] = round(-(out["entry_slip"] + out["exit_slip"]) * qty
                            * (1.0 if equity else multiplier), 2) + 0.0
    return out
