"""Canonical JSON for signed objects and the nesting-depth check: a re-export.

The code lives in :mod:`wg_backends.signed.canonical` (the privileged helper verifies
bundles too, and ``wg_backends`` never imports ``core``); every public name and exception
is the same object here.
"""

from __future__ import annotations

from wg_backends.signed.canonical import *  # noqa: F403  (the same objects, one definition)
from wg_backends.signed.canonical import __all__ as __all__
