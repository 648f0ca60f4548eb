"""The ``<out>.parts/`` folder of a resumable download: one parquet per finished chunk.

Each part is written to a temp file and renamed, so a part that exists is complete. A
``manifest.json`` records the request (symbol, timespan, source, range, extended); finished
parts are reused only by the same request, and the folder of another request is refused
with one line telling the user to delete it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd

from feeds._fetch import FetchError

Chunk = tuple[dt.date, dt.date]


def part_path(parts: Path, chunk: Chunk) -> Path:
    """Where the part of ``chunk`` lives (``<first>_<last>.parquet``)."""
    return parts / f"{chunk[0]}_{chunk[1]}.parquet"


def save_part(parts: Path, chunk: Chunk, frame: pd.DataFrame) -> None:
    """Write a finished chunk through a temp file and rename it into place."""
    path = part_path(parts, chunk)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def claim_parts(parts: Path, want: dict) -> None:
    """Create the folder with its manifest ``want``, or check that its parts belong to it.

    A folder without finished parts is simply taken over.

    Raises
    ------
    FetchError : the folder holds parts of a different request (or has no readable manifest).
    """
    manifest = parts / "manifest.json"
    if any(parts.glob("*.parquet")):
        try:
            seen = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            seen = None
        if seen == want:
            return
        raise FetchError(f"{parts} holds parts of a different download "
                         f"({_differences(seen, want)}); delete that folder and run again")
    parts.mkdir(parents=True, exist_ok=True)
    tmp = parts / ".manifest.json.tmp"
    tmp.write_text(json.dumps(want, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)


def _differences(seen: object, want: dict) -> str:
    if not isinstance(seen, dict):
        return "it has no readable manifest.json"
    return ", ".join(f"{k} {seen.get(k)} there, {v} now" for k, v in want.items()
                     if seen.get(k) != v)
