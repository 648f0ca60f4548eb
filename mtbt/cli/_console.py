"""The console tables the commands print (rich, imported only when one is printed)."""
from __future__ import annotations


def print_table(title: str, header, body, notes) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in header:
        table.add_column(name, overflow="fold")     # wrap a long file name, never cut it
    for row in body:
        table.add_row(*row)
    console = Console(width=160)
    console.print(table)
    for note in notes:
        console.print(f"- {note}")


def print_summary(result) -> None:
    """A backtest's headline figures, its notes and where the reports are."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    console = Console()
    table = Table(title="mtbt backtest", show_header=False)
    if s["data"] == "synthetic":
        table.add_row("data", "[bold yellow]SYNTHETIC sample (not market data)[/]")
    else:
        table.add_row("data", s["data"])
    rows = [("period", f"{s['start'][:10]} to {s['end'][:10]}" if s["start"] else "-"),
            ("bars", f"{result.bars:,} in {result.seconds:.1f} s"),
            ("trades", f"{s['trades']} ({s['wins']} won, {s['win_rate']:.1%})"),
            ("total PnL", f"${s['total_pnl']:,.2f}"),
            ("max drawdown", f"${s['max_drawdown']:,.2f}"),
            ("sharpe", _num(s["sharpe"])), ("profit factor", _num(s["profit_factor"])),
            ("final equity", f"${s['final_equity']:,.2f}"),
            *_alert_rows(result.alerts, s),
            *_allocator_rows(s.get("allocator")),
            *_price_rows(s.get("option_prices")),
            *_regime_rows(result.regimes),
            ("reports", str(result.out_dir))]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")


def _alert_rows(alerts: list, summary: dict) -> list[tuple[str, str]]:
    """The count of risk alerts, and the drawdown breaker's trips."""
    if not alerts:
        return []
    rows = [("risk alerts", f"{len(alerts)} (see run.log)")]
    trips = [(when, text) for when, text in alerts if text.startswith("max drawdown")]
    if summary.get("max_dd_action") == "alert" and trips:
        first = trips[0][0]
        rows.append(("breaker (alert)", f"tripped {len(trips)} time(s), first "
                                        f"{first:%Y-%m-%d %H:%M}; trading went on"))
    else:
        rows += [("trading paused", f"{when:%Y-%m-%d %H:%M}: {text}") for when, text in trips]
    return rows


def _allocator_rows(counts: dict | None) -> list[tuple[str, str]]:
    """How the options allocator decided the run's signals."""
    if not counts:
        return []
    picked = ", ".join(f"{name} {n}" for name, n in counts["structures"].items()) or "none"
    return [("options", f"{counts['signals']} signals: structures {picked}; as shares "
                        f"{counts['shares']}; skipped {counts['skipped']} (allocator.csv)")]


def _price_rows(prices: dict | None) -> list[tuple[str, str]]:
    """Where the run's option prices came from (summary.json's ``option_prices``)."""
    if not prices:
        return []
    drops = ", ".join(f"{rule} {n}" for rule, n in prices["liquidity_drops"].items() if n)
    drops = f"; liquidity drops: {drops}" if drops else ""
    if prices["mode"] == "model":
        return [("option prices", f"model (synthetic chain; no recorded option data){drops}")]
    fills, marks = prices["fills"], prices["marks"]
    skipped = prices["skipped_no_recorded_price"]
    share = prices["recorded_fill_share"]
    head = "no option fills" if share is None else f"recorded {share:.0%} of fills"
    return [("option prices",
             f"{prices['mode']}: {head} ({fills['recorded']} recorded, {fills['model']} model); "
             f"marks {marks['recorded']} recorded, {marks['model']} model; sessions "
             f"{prices['sessions']['recorded']} recorded, {prices['sessions']['model']} model; "
             f"{skipped['entries']} entries and {skipped['candidates']} candidates without a "
             f"recorded price{drops}")]


def _regime_rows(regimes: dict[str, int]) -> list[tuple[str, str]]:
    """Sessions per regime at the open (the volatility filter's pauses)."""
    if not regimes:
        return []
    return [("regime", ", ".join(f"{name} {n}" for name, n in regimes.items()) + " sessions")]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
