"""Payoff charts: each structure type a run traded, at entry (model value) and at expiry."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mtbt.options.chain import atm_iv, mid, years_to_close


def payoff_chart(path: Path, name: str, structure, premium: float, model, vix: float,
                 now, expiry_close, spot: float) -> Path:
    """A PNG of profit per contract against the underlying: at expiry, and at entry (the
    synthetic chain's mid at the entry time), for the first ``name`` structure of the run."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strikes = [leg.strike for leg in structure.legs]
    lo, hi = min(strikes + [spot]) * 0.985, max(strikes + [spot]) * 1.015
    xs = np.linspace(lo, hi, 241)
    mult = model.multiplier
    at_expiry = (np.asarray(structure.payoff(xs)) - premium) * mult
    t, atm = years_to_close(now, expiry_close), atm_iv(model, vix)
    at_entry = sum(leg.qty * mid(model, atm, xs, t, leg.right, leg.strike)
                   for leg in structure.legs) - premium
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(xs, at_expiry, label="at expiry")
    ax.plot(xs, at_entry * mult, label=f"at entry ({now:%Y-%m-%d %H:%M}, model mid)")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(spot, color="grey", linestyle=":", label=f"underlying at entry {spot:.2f}")
    ax.set_title(f"{structure.label} (premium {premium:+.2f}/share)")
    ax.set_xlabel("underlying")
    ax.set_ylabel("profit per contract ($, before fees)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path
