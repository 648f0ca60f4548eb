"""The side-by-side table of ``mtbt validate`` (validate.md and the console)."""
from __future__ import annotations

from pathlib import Path

from mtbt.validate import ACTIONS, METRICS, ScenarioResult, any_miss, fetch_commands

HEADER = ("scenario", "breaker", "data used", "trades", "win rate", "PnL", "max DD",
          "profit factor", "trips")
STRICT = ("--strict fails on a MISS in a pause row only: pause is max_dd_action as deployed. "
          "The alert rows run the same data with the drawdown breaker marking its trips "
          "while trading goes on, to show what the pause changes; they never fail the "
          "command (an error in either run does).")


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "win_rate":
        return f"{value:.1%}"
    if key == "total_pnl":
        return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """One row per run: the breaker's action, each metric as ``ours / reference VERDICT``,
    and how often the drawdown breaker tripped."""
    out = []
    for r in results:
        if r.error:
            cells = [f"ERROR: {r.error}"] + [""] * 5
        elif r.summary is None:
            cells = ["not run: no data"] + [""] * 5
        else:
            v = r.verdicts()
            cells = [f"{_fmt(k, v[k][0])} / {_fmt(k, v[k][1])} {v[k][2]}" for _, k in METRICS]
            cells.append(_fmt("total_pnl", r.summary["max_drawdown"]))
            cells.append(_fmt("pf", r.summary["profit_factor"]))
            cells.append(str(len(r.summary.get("breaker_trips", []))))
        out.append((r.name, r.action or "-", r.choice.describe(), *cells))
    return out


def footnotes(results: list[ScenarioResult], data_dir: Path) -> list[str]:
    """What the table cannot say in a cell: missing data, proxies, breaker trips, notes, the
    --strict rule, honesty."""
    lines = []
    for r in _first_runs(results):
        for command in fetch_commands(r.cfg, r.choice, data_dir):
            lines.append(f"{r.name}: to get its data, run `{command}`")
        if r.choice.proxy:
            lines.append(f"{r.name}: ran on {r.choice.symbol} bars as a proxy for "
                         f"{r.cfg.strategy.symbol} (its prices traded as if they were shares)")
    lines += [_trips(r) for r in results if r.summary and r.summary.get("breaker_trips")]
    lines += _notes(results)
    if any(r.action for r in results):
        lines.append(STRICT)
    if any_miss(results):
        lines.append("MISS means the report's figure is not reproduced within the tolerance. "
                     "mtbt runs the default parameters in every window and does not tune them "
                     "per window, so these figures cannot be reached honestly here.")
    return lines


def _first_runs(results: list[ScenarioResult]) -> list[ScenarioResult]:
    """The first result of each scenario (its runs share the data choice)."""
    first: dict[str, ScenarioResult] = {}
    for r in results:
        first.setdefault(r.name, r)
    return list(first.values())


def _trips(r: ScenarioResult) -> str:
    times = ", ".join(t[:16].replace("T", " ") for t in r.summary["breaker_trips"])
    then = ("trading paused for the rest of the window, open lots closed"
            if r.action == "pause" else "trading went on")
    return f"{r.name} ({r.action}): the drawdown breaker tripped {times}; {then}"


def _notes(results: list[ScenarioResult]) -> list[str]:
    """Each run's notes, once per scenario when every run of it has the note."""
    seen: dict[tuple[str, str], list[str]] = {}
    runs: dict[str, int] = {}
    for r in results:
        runs[r.name] = runs.get(r.name, 0) + 1
        for note in r.notes:
            seen.setdefault((r.name, note), []).append(r.action or "-")
    return [f"{name}: {note}" if len(actions) == runs[name] else
            f"{name} ({', '.join(actions)}): {note}"
            for (name, note), actions in seen.items()]


def markdown(results: list[ScenarioResult], data_dir: Path) -> str:
    """validate.md: the table, its legend and the footnotes."""
    lines = ["# mtbt validate", "",
             "Each metric reads `ours / report's  PASS|MISS` (within the scenario's tolerance).",
             f"Each scenario runs once per drawdown breaker action ({', '.join(ACTIONS)}); "
             "trips counts the breaker's trips.",
             "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    notes = footnotes(results, data_dir)
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"
