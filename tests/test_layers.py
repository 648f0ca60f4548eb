"""The import-linter contracts of pyproject.toml: layers, forbidden imports, no cycles."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")


def test_the_import_linter_contracts_of_pyproject_hold():
    """Run as ``lint-imports`` from the repository root, in its own process (it configures
    logging for the whole process); its report on failure."""
    done = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
