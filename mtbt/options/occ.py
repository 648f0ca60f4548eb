"""OCC option symbols (``SPY250829C00645000``: root, expiry YYMMDD, C/P, strike x 1000)."""
from __future__ import annotations

import datetime as dt
import re

OCC = re.compile(r"^([A-Z.]{1,6})(\d{6})([CP])(\d{8})$")


def occ_symbol(root: str, expiry: dt.date, right: str, strike: float) -> str:
    """The OCC symbol of one contract, e.g. ``SPY250829C00645000``."""
    return f"{root}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def parse_occ(symbol: str) -> tuple[str, dt.date, str, float] | None:
    """(root, expiry, right, strike) of an OCC symbol, or None for anything else."""
    m = OCC.match(symbol)
    if m is None:
        return None
    expiry = dt.datetime.strptime(m.group(2), "%y%m%d").date()
    return m.group(1), expiry, m.group(3), int(m.group(4)) / 1000
