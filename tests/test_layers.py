"""The import-linter contracts of pyproject.toml: layers, forbidden imports, no cycles."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_linter_contracts_of_pyproject_hold(monkeypatch, capsys):
    """Run like ``lint-imports`` from the repository root; the report on failure."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out[-3000:]
