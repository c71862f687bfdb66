"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists ``name → submodule`` and gets a module ``__getattr__`` that imports the
submodule on first access, so importing the package stays cheap (the tray's start-up and
memory depend on it) while ``from core.policy import PolicyEngine`` keeps working.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: MutableMapping[str, Any], table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for the module whose ``globals()`` is ``namespace``.

    Each name is imported from its submodule on first access and then cached in the
    module's namespace. Thread-safe through the import lock.
    """
    module_name = str(namespace.get("__name__", "?"))

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__
