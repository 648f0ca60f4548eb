"""Research over many backtests: parameter sweeps and walk-forward runs on Ray, and Monte
Carlo resampling of a finished run's trades.

``ray`` is an optional dependency (``pip install 'mtbt[scale]'``), imported only when a
sweep or walk-forward starts.
"""
from mtbt.research.grid import Combination, Grid, combinations, load_grid
from mtbt.research.montecarlo import bootstrap, read_run
from mtbt.research.pool import RayPool
from mtbt.research.sweep import SweepResult, run_sweep
from mtbt.research.tasks import Task, run_task
from mtbt.research.walkforward import WalkForwardResult, run_walkforward
from mtbt.research.windows import Window, cut, make_windows

__all__ = [
    "Combination", "Grid", "RayPool", "SweepResult", "Task", "WalkForwardResult", "Window",
    "bootstrap", "combinations", "cut", "load_grid", "make_windows", "read_run", "run_sweep",
    "run_task", "run_walkforward",
]
