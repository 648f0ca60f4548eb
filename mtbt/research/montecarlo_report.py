"""The Monte Carlo report: montecarlo.json, montecarlo.md (a table) and montecarlo.png (the
distributions of total PnL and maximum drawdown, with the run's own figures and the limit)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from analyzers.report import atomic_write
from mtbt.research.metrics import show
from mtbt.research.montecarlo import PERCENTILES, Paths, RunTrades, actual, distribution

GROUPING = ("trades.csv rows grouped by trade_id: a trade that scales out counts once, with "
            "the sum of its rows' net pnl, on the day of its last exit")


def facts(run: RunTrades, paths: Paths, n: int, seed: int) -> dict[str, Any]:
    """Everything montecarlo.json holds."""
    own = actual(run)
    return {
        "report": str(run.folder), "paths": n, "seed": seed, "resampled": GROUPING,
        "trades": len(run.pnl), "days": int(run.days[-1]) + 1,
        "limits": {"daily_dd_limit": run.daily_limit, "max_dd_threshold": run.total_limit},
        "total_pnl": distribution(paths.total_pnl),
        "max_drawdown": distribution(paths.max_drawdown),
        "p_loss": round(float((paths.total_pnl < 0).mean()), 4),
        "p_daily_limit": round(float(paths.daily_hit.mean()), 4),
        "p_total_limit": round(float(paths.total_hit.mean()), 4),
        "run": {"total_pnl": round(float(own.total_pnl[0]), 2),
                "max_drawdown": round(float(own.max_drawdown[0]), 2),
                "daily_limit_hit": bool(own.daily_hit[0]),
                "total_limit_hit": bool(own.total_hit[0])},
    }


def write_report(out: Path, run: RunTrades, paths: Paths, n: int, seed: int) -> dict[str, Any]:
    """Write montecarlo.json, montecarlo.md and montecarlo.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figures = facts(run, paths, n, seed)
    atomic_write(out / "montecarlo.json", json.dumps(figures, indent=2) + "\n")
    chart(out / "montecarlo.png", paths, figures)
    atomic_write(out / "montecarlo.md", markdown(figures))
    return figures


def markdown(f: dict[str, Any]) -> str:
    """The table of montecarlo.md."""
    pcts = " | ".join(f"{q}%" for q in PERCENTILES)
    lines = [f"# Monte Carlo of {f['report']}", "",
             f"{f['paths']:,} bootstrap paths (seed {f['seed']}) of the run's {f['trades']} "
             f"trades over {f['days']} trading days; resampled: {f['resampled']}. Each path "
             "keeps the run's number of trades per day. Drawdowns are of realised equity "
             "(closed trades), so they can be smaller than summary.json's, which marks open "
             "positions; the limits are measured, not enforced (a path trades on after "
             "hitting one).", "",
             f"| figure | mean | {pcts} | the run |",
             "|---|---|" + "---|" * len(PERCENTILES) + "---|"]
    for name in ("total_pnl", "max_drawdown"):
        d = f[name]
        cells = " | ".join(show(d[f"p{q}"], name) for q in PERCENTILES)
        lines.append(f"| {name} | {show(d['mean'], name)} | {cells} | "
                     f"{show(f['run'][name], name)} |")
    limits, run = f["limits"], f["run"]
    lines += ["", "| chance of | bootstrap | the run |", "|---|---|---|",
              f"| a loss overall | {f['p_loss']:.1%} | {'yes' if run['total_pnl'] < 0 else 'no'} |",
              f"| a day losing {show(limits['daily_dd_limit'], 'total_pnl')} (daily_dd_limit) | "
              f"{f['p_daily_limit']:.1%} | {'yes' if run['daily_limit_hit'] else 'no'} |",
              f"| a drawdown of {show(limits['max_dd_threshold'], 'total_pnl')} "
              f"(max_dd_threshold) | {f['p_total_limit']:.1%} | "
              f"{'yes' if run['total_limit_hit'] else 'no'} |",
              "", "![distributions](montecarlo.png)", ""]
    return "\n".join(lines)


def chart(path: Path, paths: Paths, f: dict[str, Any]) -> None:
    """Histograms of total PnL and maximum drawdown (PNG, no pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for ax, values, name in ((left, paths.total_pnl, "total_pnl"),
                             (right, paths.max_drawdown, "max_drawdown")):
        ax.hist(values, bins=min(60, max(10, len(np.unique(values)))), color="#7a9cc6")
        ax.axvline(f["run"][name], color="black", label=f"the run {show(f['run'][name], name)}")
        for q in (5, 95):
            ax.axvline(f[name][f"p{q}"], color="grey", linestyle=":")
        ax.set_xlabel(f"{name} ($); dotted: 5th and 95th percentiles")
        ax.set_ylabel("paths")
    right.axvline(f["limits"]["max_dd_threshold"], color="red", linestyle="--",
                  label=f"max_dd_threshold {show(f['limits']['max_dd_threshold'], 'max_drawdown')}")
    left.axvline(0, color="grey", linewidth=0.8)
    for ax in (left, right):
        ax.legend(fontsize=8)
    fig.suptitle(f"Monte Carlo: {f['paths']:,} bootstrap paths of {f['trades']} trades "
                 f"(seed {f['seed']})", fontsize=10)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part")
    fig.savefig(tmp, format="png", dpi=100)
    tmp.replace(path)
