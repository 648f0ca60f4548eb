"""Which strategy a run file names: a registered name or ``package.module:Class``.

The run file's ``[strategy] name`` is resolved here, and only here; nothing else branches
on a strategy's name. A strategy class says what it needs from the run file itself:
``config_section`` (the section its own params come from: ``strategy`` or, for the condor,
``iron_condor``) and ``instrument`` (None: ``[strategy] instrument`` decides; the condor
trades only ``"options"``). This module imports no strategy (``runner.resolve_strategy``
does), so loading a run file stays cheap.
"""
from __future__ import annotations

import re

STRATEGIES = {"wave_renko": "mtbt.strategies.wave_renko:WaveRenko",
              "iron_condor": "mtbt.strategies.iron_condor:IronCondor0DTE"}
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def check_name(name: str) -> str:
    """``name`` if it is registered or has the ``module:Class`` form; ValueError if not."""
    if name in STRATEGIES or _DOTTED.match(name):
        return name
    raise ValueError(f"{name!r} is neither a registered strategy "
                     f"({', '.join(STRATEGIES)}) nor package.module:Class")


def class_path(name: str) -> tuple[str, str]:
    """(module, class name) of a registered name or a ``module:Class``."""
    module, _, cls = STRATEGIES.get(name, name).partition(":")
    return module, cls
