"""Architecture contracts: layering rules of shared DESIGN.md §2 and the test loop."""

from __future__ import annotations

import asyncio
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.unit


def _modules(package: str) -> list[str]:
    pkg_path = ROOT / package
    names = [package]
    for info in pkgutil.walk_packages([str(pkg_path)], prefix=f"{package}."):
        names.append(info.name)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("core", ("PySide6", "qasync", "app", "controller")),
        ("wg_backends", ("PySide6", "qasync", "app", "controller", "core")),
    ],
)
def test_package_never_imports_forbidden(package: str, forbidden: tuple[str, ...]) -> None:
    """Importing every module of the package pulls in none of the forbidden packages."""
    code = (
        "import importlib, sys\n"
        f"for name in {_modules(package)!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"{package} imports {out.stdout.strip()}"


def test_every_package_has_a_docstring() -> None:
    for package in ("app", "core", "wg_backends", "controller"):
        init = ROOT / package / "__init__.py"
        source = init.read_text()
        assert source.lstrip().startswith('"""'), f"{init} has no module docstring"


@pytest.mark.ui
async def test_ui_async_tests_run_on_a_qt_loop() -> None:
    """A Qt timer fires inside an async test (the qasync loop factory is in force)."""
    from PySide6.QtCore import QTimer

    fired = asyncio.Event()
    QTimer.singleShot(10, fired.set)
    await asyncio.wait_for(fired.wait(), 2)
