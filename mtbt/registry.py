"""Which strategy a run file names: a registered name or ``package.module:Class``.

The run file's ``[strategy] name`` is resolved here, and only here; nothing else branches
on a strategy's name. A strategy class says what it needs from the run file itself:
``config_section`` (the section its own params come from: ``strategy`` or, for the condor,
``iron_condor``) and ``instrument`` (None: ``[strategy] instrument`` decides; the condor
trades only ``"options"``). This module imports no strategy until one is resolved, so
loading a run file stays cheap.
"""
from __future__ import annotations

import importlib
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


def resolve(name: str) -> type:
    """The strategy class ``name`` names (ImportError/AttributeError/TypeError say why
    not)."""
    module, _, cls = STRATEGIES.get(name, name).partition(":")
    strategy = getattr(importlib.import_module(module), cls)
    from mtbt.strategies.base import ManagedStrategy

    if not (isinstance(strategy, type) and issubclass(strategy, ManagedStrategy)):
        raise TypeError(f"{name} is not a ManagedStrategy subclass")
    return strategy
