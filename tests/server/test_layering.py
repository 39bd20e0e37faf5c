"""The layering contract of pyproject.toml ([tool.importlinter]) holds: import-linter finds no import that breaks it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# lint-imports run by this interpreter (its script need not be on PATH); it reads pyproject.toml in its cwd
# and imports the packages from there. No cache: it writes nothing into the checkout.
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                "--no-cache", "--no-logo"]


def test_every_import_keeps_the_layering_contract():
    run = subprocess.run(LINT_IMPORTS, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        pytest.fail(f"lint-imports did not pass:\n{run.stdout}{run.stderr}", pytrace=False)
