"""Ed25519 JWS (compact serialisation) for signed documents, and key helpers: a re-export.

The code lives in :mod:`wg_backends.signed.jws` (the privileged helper verifies bundles
too, and ``wg_backends`` never imports ``core``); every public name and exception is the
same object here.
"""

from __future__ import annotations

import msgspec  # noqa: F401  (tests reach it as core.wire.signing.msgspec)

from wg_backends.signed.jws import *  # noqa: F403  (the same objects, one definition)
from wg_backends.signed.jws import __all__ as __all__
