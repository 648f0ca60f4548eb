"""Work-arounds for backtrader 1.9.78.123 on current Python, pandas, numpy and matplotlib.

backtrader's last release (2023) is frozen upstream. mtbt neither vendors nor forks it: the
few places that break on today's stack are patched here, once, when ``mtbt`` is imported.
Each fix is idempotent and has a test in ``tests/test_compat.py``.

Checked against pandas 3, numpy 2 and matplotlib 3.11: backtrader's pandas and numpy use
(``PandasData``, ``PyFolio``) still works, so the fixes are for Python and matplotlib.

1. ``collections.Iterable`` (removed in Python 3.10) is used by
   ``LineIterator.bindlines``: restore the ``collections.abc`` aliases backtrader needs.
2. ``import backtrader.plot`` calls ``matplotlib.use('TKAgg')``, which breaks any later
   ``pyplot`` use on a machine without a display (CI, servers, quantstats' tearsheet):
   import it once here and put the backend that was selected before back.
"""
from __future__ import annotations

import collections
import collections.abc

_ABC_NAMES = ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable")


def _restore_collections_aliases() -> None:
    for name in _ABC_NAMES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _import_plot_keeping_backend() -> None:
    import matplotlib

    before = matplotlib.rcParams._get("backend")  # raw value: may be the 'auto' sentinel
    import backtrader.plot  # noqa: F401  (forces TKAgg on import)

    matplotlib.rcParams._set("backend", before)


def apply() -> None:
    """Apply every fix (safe to call more than once)."""
    _restore_collections_aliases()
    _import_plot_keeping_backend()
