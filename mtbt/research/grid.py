"""Parameter grids: GRID.toml (the run file's sections, a list of values per key) and the
validated run config of every combination.

Examples
--------
A grid of 2 x 2 = 4 combinations::

    [scaling_exits]
    tp1_pct = [0.008, 0.01]
    stop_pct = [0.006, 0.007]
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtbt._config_errors import fmt
from mtbt.config import RunConfig, load_run, read_run_file
from mtbt.errors import ConfigError

#: Sections a sweep cannot vary: its bars are loaded once, and its runs write no reports.
FIXED_SECTIONS = {
    "data": "the bars are loaded once for all combinations; set data keys in the run file "
            "or with --set",
    "report": "the runs of a sweep write no reports of their own",
}


@dataclass(frozen=True)
class Grid:
    """The keys (``section.key``) of a grid file and the values listed for each."""

    path: str
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]

    def __len__(self) -> int:
        n = 1
        for values in self.values:
            n *= len(values)
        return n

    def points(self) -> Iterator[dict[str, Any]]:
        """Every combination as ``{section.key: value}``, the last key varying fastest."""
        for combo in itertools.product(*self.values):
            yield dict(zip(self.keys, combo, strict=True))

    @property
    def swept(self) -> tuple[str, ...]:
        """The keys with more than one value."""
        return tuple(k for k, v in zip(self.keys, self.values, strict=True) if len(v) > 1)

    def labels(self, key: str) -> list[str]:
        """The values of ``key`` as written in TOML, in grid order."""
        return [fmt(v) for v in self.values[self.keys.index(key)]]


@dataclass(frozen=True)
class Combination:
    """One point of the grid: its number (1-based, grid order), values and run config."""

    number: int
    params: dict[str, Any]
    cfg: RunConfig

    @property
    def label(self) -> str:
        """``section.key=value, ...`` for messages."""
        return describe(self.params)


def describe(params: dict[str, Any]) -> str:
    """``section.key=value, ...`` with the values written as in TOML."""
    return ", ".join(f"{key}={fmt(value)}" for key, value in params.items())


def load_grid(path: str | Path) -> Grid:
    """Read GRID.toml; raise a one-line ConfigError naming the file and the key."""
    origin = str(path)
    data = read_run_file(Path(path), origin)    # TOML errors, unknown sections and keys
    keys, values = [], []
    for section, table in data.items():
        if section in FIXED_SECTIONS:
            raise ConfigError(f"{origin}: [{section}] cannot be swept: {FIXED_SECTIONS[section]}")
        for key, listed in table.items():
            name = f"{section}.{key}"
            if not isinstance(listed, list) or not listed:
                raise ConfigError(f"{origin}: {name} = {fmt(listed)}: expected a non-empty "
                                  "list of values, e.g. [0.008, 0.01]")
            repeated = [v for i, v in enumerate(listed) if v in listed[:i]]
            if repeated:
                raise ConfigError(f"{origin}: {name} lists {fmt(repeated[0])} twice")
            keys.append(name)
            values.append(tuple(listed))
    if not keys:
        raise ConfigError(f"{origin}: no keys to sweep: expected e.g. [scaling_exits] "
                          "with tp1_pct = [0.008, 0.01]")
    return Grid(origin, tuple(keys), tuple(values))


def combinations(grid: Grid, run: str | Path | None,
                 overrides: Sequence[str] = ()) -> list[Combination]:
    """The run config of every combination, each validated like a run file.

    ``overrides`` (``--set``) apply first and the grid's values after them; a key may not be
    in both. The first invalid combination raises a ConfigError naming the grid file, the
    key and its value.
    """
    fixed = {raw.split("=", 1)[0].strip() for raw in overrides}
    both = sorted(fixed & set(grid.keys))
    if both:
        raise ConfigError(f"{grid.path}: {both[0]} is swept here and also set with --set")
    load_run(run, overrides)     # the run file's and --set's own problems are named first
    return [Combination(n, params, _config(grid, run, overrides, params))
            for n, params in enumerate(grid.points(), start=1)]


def _config(grid: Grid, run: str | Path | None, overrides: Sequence[str],
            params: dict[str, Any]) -> RunConfig:
    mine = {f"{key}={fmt(value)}": key for key, value in params.items()}
    try:
        return load_run(run, [*overrides, *mine])
    except ConfigError as exc:
        text, where = str(exc), f" (in the combination {describe(params)})"
        for raw, key in mine.items():
            prefix = f"--set {raw}: "
            if text.startswith(prefix):
                rest = text.removeprefix(prefix)
                if not rest.startswith(f"{key} = "):
                    rest = f"{key} = {fmt(params[key])}: {rest}"
                raise ConfigError(f"{grid.path}: {rest}{where}") from None
        every = ", ".join(f"--set {raw}" for raw in [*overrides, *mine]) + ": "
        if text.startswith(every):     # no single override to blame
            raise ConfigError(f"{grid.path}: {text.removeprefix(every)}{where}") from None
        raise
