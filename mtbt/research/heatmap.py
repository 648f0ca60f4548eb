"""heatmap.html: one metric of a sweep over two parameters, as a PNG inside a small HTML page.

When the grid has more parameters than the two axes, each cell shows the best value over
the others (the highest, or the lowest drawdown). matplotlib draws it without pyplot, so no
display or GUI backend is needed.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mtbt.research.metrics import LOWER_IS_BETTER, show


def matrix(frame: pd.DataFrame, metric: str, x: str, x_labels: Sequence[str],
           y: str | None, y_labels: Sequence[str]) -> np.ndarray:
    """``len(y_labels) x len(x_labels)`` values of ``metric`` (NaN where no run finished).

    ``frame`` has one row per finished run, the parameters as TOML-written labels and the
    metric as a number; several rows per cell are reduced to the best of them.
    """
    values = pd.to_numeric(frame[metric], errors="coerce")
    keys = [frame[y], frame[x]] if y else [frame[x]]
    grouped = values.groupby(keys)
    cells = grouped.min() if metric in LOWER_IS_BETTER else grouped.max()
    if not y:
        return cells.reindex(list(x_labels)).to_numpy(dtype=float)[None, :]
    full = pd.MultiIndex.from_product([list(y_labels), list(x_labels)])
    return cells.reindex(full).to_numpy(dtype=float).reshape(len(y_labels), len(x_labels))


def png(values: np.ndarray, metric: str, x: str, x_labels: Sequence[str], y: str | None,
        y_labels: Sequence[str], title: str) -> bytes:
    """The heatmap as PNG bytes: green is better, each cell written out."""
    from matplotlib.figure import Figure

    rows, cols = values.shape
    fig = Figure(figsize=(max(5.0, 1.1 * cols + 2.5), max(3.0, 0.6 * rows + 2.0)))
    ax = fig.subplots()
    cmap = "RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn"
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    ax.set_xticks(range(cols), list(x_labels), rotation=30, ha="right")
    ax.set_yticks(range(rows), list(y_labels) if y else [""])
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, show(value, metric), ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def page(image: bytes, title: str, notes: Sequence[str], table: pd.DataFrame) -> str:
    """A self-contained HTML page: title, notes, the image and a table."""
    encoded = base64.b64encode(image).decode("ascii")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><ul>{items}</ul>"
            f"<img alt=\"heatmap\" src=\"data:image/png;base64,{encoded}\">"
            f"{table.to_html(index=False, na_rep='-')}</body></html>\n")
