"""The packages import one way: ``models`` <- ``training`` <- ``app``, and ``migrations`` (whose ``env.py`` imports
the service's tables) is imported by nobody; the service runs it through Alembic (``app/db/migrate.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the top-level packages it must not import
FORBIDDEN = {
    "models": {"training", "app", "migrations"},
    "training": {"app", "migrations"},
    "app": {"migrations"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names a module imports, wherever the import statement is (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_layering(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_migrations_are_found_without_importing_them() -> None:
    import subprocess
    import sys

    code = "import sys, app.db.migrate as m; m.head_revision(); print('migrations' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"
