"""The side-by-side table of ``mtbt validate`` (validate.md and the console)."""
from __future__ import annotations

from pathlib import Path

from mtbt.validate import METRICS, ScenarioResult, any_miss, fetch_commands

HEADER = ("scenario", "data used", "trades", "win rate", "PnL", "max DD", "profit factor")


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "win_rate":
        return f"{value:.1%}"
    if key == "total_pnl":
        return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """One row per scenario: each metric as ``ours / reference VERDICT``."""
    out = []
    for r in results:
        if r.error:
            cells = [f"ERROR: {r.error}"] + [""] * 4
        elif r.summary is None:
            cells = ["not run: no data"] + [""] * 4
        else:
            v = r.verdicts()
            cells = [f"{_fmt(k, v[k][0])} / {_fmt(k, v[k][1])} {v[k][2]}" for _, k in METRICS]
            cells.append(_fmt("total_pnl", r.summary["max_drawdown"]))
            cells.append(_fmt("pf", r.summary["profit_factor"]))
        out.append((r.name, r.choice.describe(), *cells))
    return out


def footnotes(results: list[ScenarioResult], data_dir: Path) -> list[str]:
    """What the table cannot say in a cell: missing data, proxies, notes, honesty."""
    lines = []
    for r in results:
        for command in fetch_commands(r.cfg, r.choice, data_dir):
            lines.append(f"{r.name}: to get its data, run `{command}`")
        if r.choice.proxy:
            lines.append(f"{r.name}: ran on {r.choice.symbol} bars as a proxy for "
                         f"{r.cfg.strategy.symbol} (its prices traded as if they were shares)")
        lines.extend(f"{r.name}: {note}" for note in r.notes)
    if any_miss(results):
        lines.append("MISS means the report's figure is not reproduced within the tolerance. "
                     "mtbt runs the default parameters in every window and does not tune them "
                     "per window, so these figures cannot be reached honestly here.")
    return lines


def markdown(results: list[ScenarioResult], data_dir: Path) -> str:
    """validate.md: the table, its legend and the footnotes."""
    lines = ["# mtbt validate", "",
             "Each metric reads `ours / report's  PASS|MISS` (within the scenario's tolerance).",
             "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    notes = footnotes(results, data_dir)
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
