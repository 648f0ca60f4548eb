"""Parameter sweeps: every combination of a grid backtested on Ray, into sweep.csv and a
heatmap.

The bars are loaded once by the driver and put into Ray's object store; each combination is
one task (:func:`~mtbt.research.tasks.run_task`). Finished results go to ``results.jsonl`` as
they arrive, so an interrupted sweep keeps them and a rerun with the same ``--out`` runs only
the rest; sweep.csv is written from them in grid order at the end (and on an interrupt).
backtrader's ``optstrategy`` is not used: it runs on one machine only.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analyzers.report import atomic_write
from feeds.loader import MarketData, load_market_data
from mtbt._config_errors import fmt
from mtbt.config import RunConfig
from mtbt.errors import ConfigError
from mtbt.research import heatmap
from mtbt.research.grid import Combination, Grid, combinations, load_grid
from mtbt.research.metrics import LOWER_IS_BETTER, METRICS, best
from mtbt.research.pool import Outcome, Progress, RayPool, read_journal
from mtbt.research.tasks import Task, task_key

JOURNAL = "results.jsonl"


@dataclass(frozen=True)
class SweepResult:
    """The sweep's folder, its table (one row per finished combination) and the best row."""

    out: Path
    table: pd.DataFrame
    outcome: Outcome
    best: dict[str, Any] | None
    heatmap: Path | None


def out_folder(kind: str, cfg: RunConfig, out: str | Path | None) -> Path:
    """``out``, or ``<report.out_dir>/<kind>-<run>-<timestamp>``; created."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(out) if out else Path(cfg.report.out_dir) / f"{kind}-{cfg.name}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def heatmap_axes(grid: Grid, axes: str | None) -> tuple[str | None, str | None]:
    """The heatmap's x and y keys: ``--axes X,Y`` or the first two swept keys."""
    if axes is None:
        swept = grid.swept
        return (swept[0] if swept else None), (swept[1] if len(swept) > 1 else None)
    names = [a.strip() for a in axes.split(",")]
    for name in names:
        if name not in grid.keys:
            raise ConfigError(f"--axes {axes}: {name} is not a key of {grid.path} "
                              f"(its keys: {', '.join(grid.keys)})")
    if len(names) not in (1, 2) or len(set(names)) != len(names):
        raise ConfigError(f"--axes {axes}: expected one or two different keys, e.g. "
                          "scaling_exits.tp1_pct,scaling_exits.stop_pct")
    return names[0], (names[1] if len(names) > 1 else None)


def sweep_tasks(combos: Sequence[Combination], market: MarketData) -> list[Task]:
    """One task per combination, on all the bars."""
    return [Task(task_key(c.cfg, market), f"combination {c.number} ({c.label})", c.params,
                 c.cfg) for c in combos]


def run_sweep(run: str | Path | None, grid_path: str | Path, *, overrides: Sequence[str] = (),
              out: str | Path | None = None, workers: int | None = None,
              address: str | None = None, metric: str = "total_pnl", axes: str | None = None,
              progress: Progress | None = None) -> SweepResult:
    """Backtest every combination of the grid; write sweep.csv and heatmap.html into ``out``.

    Every combination is validated before anything runs (a ConfigError names the grid file
    and the key). A failed combination is reported and listed with its error; the others
    go on. An interrupt (KeyboardInterrupt) writes sweep.csv from what finished, then
    propagates.
    """
    grid = load_grid(grid_path)
    combos = combinations(grid, run, overrides)
    x, y = heatmap_axes(grid, axes)
    pool = RayPool(workers, address)
    market = load_market_data(combos[0].cfg.data)
    folder = out_folder("sweep", combos[0].cfg, out)
    tasks = sweep_tasks(combos, market)
    journal = folder / JOURNAL
    try:
        with pool:
            outcome = pool.run(tasks, market, journal=journal, progress=progress,
                               phase="sweep")
    except KeyboardInterrupt:
        table = write_table(folder, combos, tasks, read_journal(journal))
        print(f"sweep: interrupted with {len(table)} of {len(combos)} combinations done "
              f"(kept in {journal}); rerun the same command to run the rest", file=sys.stderr)
        raise
    table = write_table(folder, combos, tasks, outcome.results)
    done = table[table["error"].isna()]
    pick = best(done[metric].tolist(), metric)
    top = None if pick is None else done.iloc[pick].to_dict()
    page = None
    if x is not None and len(done):
        page = write_heatmap(folder / "heatmap.html", grid, done, metric, x, y,
                             title=_title(combos[0].cfg, market, metric, len(combos)),
                             combinations=len(combos))
    return SweepResult(folder, table, outcome, top, page)


def write_table(folder: Path, combos: Sequence[Combination], tasks: Sequence[Task],
                results: dict[str, dict]) -> pd.DataFrame:
    """sweep.csv: one row per combination with a result, in grid order."""
    rows = []
    for combo, task in zip(combos, tasks, strict=True):
        record = results.get(task.key)
        if record is None:
            continue
        metrics = record.get("metrics") or {}
        rows.append({"combination": combo.number,
                     **{k: _cell(v) for k, v in combo.params.items()},
                     **{m: metrics.get(m) for m in METRICS},
                     "seconds": record.get("seconds"), "error": record.get("error")})
    columns = ["combination", *combos[0].params, *METRICS, "seconds", "error"]
    table = pd.DataFrame(rows, columns=columns)
    atomic_write(folder / "sweep.csv", table.to_csv(index=False))
    return table


def write_heatmap(path: Path, grid: Grid, table: pd.DataFrame, metric: str, x: str,
                  y: str | None, *, title: str, combinations: int) -> Path:
    """heatmap.html of ``metric`` over ``x`` (and ``y``), the best over the other keys, from
    the finished rows of sweep.csv."""
    labels = {key: {_cell(v): fmt(v) for v in values}
              for key, values in zip(grid.keys, grid.values, strict=True)}
    labelled = pd.DataFrame({key: table[key].map(labels[key]) for key in (x, y) if key})
    labelled[metric] = table[metric].to_numpy()
    y_labels = grid.labels(y) if y else [""]
    values = heatmap.matrix(labelled, metric, x, grid.labels(x), y, y_labels)
    image = heatmap.png(values, metric, x, grid.labels(x), y, y_labels, f"{metric} (in-sample)")
    others = [k for k in grid.swept if k not in (x, y)]
    notes = [f"Each cell: {metric} of the combination at that point"
             + (f", the best over {', '.join(others)}" if others else "") + ".",
             "These are in-sample figures: the best of many combinations on the same bars "
             "looks better than it will on new data (see mtbt walkforward).",
             f"{len(table)} of {combinations} combinations finished; below, the best 10."]
    ranked = table.sort_values(metric, ascending=metric in LOWER_IS_BETTER,
                               na_position="last")
    shown = ranked.drop(columns=["seconds", "error"]).head(10)
    atomic_write(path, heatmap.page(image, title, notes, shown))
    return path


def _title(cfg: RunConfig, market: MarketData, metric: str, n: int) -> str:
    data = "SYNTHETIC sample" if market.synthetic else Path(market.label).name
    return f"mtbt sweep {cfg.name}: {metric} over {n} combinations ({data})"


def _cell(value: Any) -> Any:
    """A parameter for sweep.csv: numbers and strings as they are, the rest as TOML."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return value
    return fmt(value)
