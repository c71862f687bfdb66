"""Architecture contracts: layering rules of shared DESIGN.md §2 and the test loop."""

from __future__ import annotations

import asyncio
import pkgutil
import shutil
import subprocess
import sys
import tomllib
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


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert found, "lint-imports is missing: install the dev extras (import-linter)"
    return found


def test_import_contracts_hold() -> None:
    """``lint-imports`` (the contracts in pyproject.toml) passes on the real tree."""
    out = subprocess.run(
        [_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_layers_contract_catches_a_function_level_upward_import(tmp_path: Path) -> None:
    """Our layers contract, on a copy of the layout, flags a lazy import inside a function.

    The synthetic tree has every layer as a package; ``core.settings`` imports
    ``core.cli`` only inside a function body, like the template generator once did.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "layers")
    names = {"core.cli", "core.settings", "wg_backends", "app", "controller"}
    for layer in layers["layers"]:
        for part in layer.replace("|", ":").split(":"):
            names.add(part.strip().strip("()"))
    for name in sorted(names):
        package = tmp_path.joinpath(*name.split("."))
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
    (tmp_path / "core" / "__init__.py").touch()
    (tmp_path / "core" / "settings" / "templates.py").write_text(
        "def reference():\n    from core.cli import main\n\n    return main\n"
    )
    (tmp_path / "core" / "cli" / "main.py").write_text("")
    contract = "\n".join(
        [
            "[tool.importlinter]",
            f"root_packages = {config['root_packages']!r}",
            "[[tool.importlinter.contracts]]",
            'id = "layers"',
            'name = "layers"',
            'type = "layers"',
            f"layers = {layers['layers']!r}",
        ]
    )
    (tmp_path / "pyproject.toml").write_text(contract.replace("'", '"') + "\n")
    out = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "core.settings.templates -> core.cli.main" in out.stdout


def test_a_coroutine_never_awaited_fails_the_test(tmp_path: Path) -> None:
    """pytest runs with ``error::RuntimeWarning``: a forgotten ``await`` is a failure."""
    (tmp_path / "test_forgot.py").write_text(
        "import gc\n\n"
        "async def work():\n    return 1\n\n"
        "def test_forgets_to_await():\n    work()\n    gc.collect()\n"
    )
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-p", "no:qt"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", *config, "-q", str(tmp_path / "test_forgot.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1, out.stdout[-2000:]
    assert "was never awaited" in out.stdout
