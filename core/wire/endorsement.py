"""Key endorsements (a policy root key vouching for a signing key): a re-export.

The code lives in :mod:`wg_backends.signed.endorsement` (the privileged helper verifies
bundles too, and ``wg_backends`` never imports ``core``); every public name and exception
is the same object here.
"""

from __future__ import annotations

from wg_backends.signed.endorsement import *  # noqa: F403  (the same objects, one definition)
from wg_backends.signed.endorsement import __all__ as __all__
