"""Signed updates on Windows and macOS, the client's side (issue 19).

The :class:`~core.update.updater.Updater` fetches the signed update manifest from
``update_url``, verifies it with the pinned ``update_keys``
(:mod:`wg_backends.signed.update_manifest`: signature, expiry, this platform's file) and
refuses rollback (below the installed version, or below the highest manifest version
this client has seen, :class:`~core.update.floor.SeenFloor`). A newer release is handed
to the privileged helper as the manifest token alone: the helper verifies it again with
its *own* managed keys and floor, downloads the installer into its admin-only directory,
re-checks it and runs it (:mod:`wg_backends.helper.updates`). MDM turns it off
(``auto_update``) or pins a version (``update_pin_version``). Linux is updated from the
apt/dnf repository and never here.

Errors (:mod:`core.update.errors`)::

    UpdateError (code)            anything raised by core.update
     ├── UpdateFetchError         the manifest could not be fetched (network, HTTP, size)
     └── UpdateRejected           the manifest or the install was refused (``update_*`` code)
"""

from core.update.errors import UpdateError, UpdateFetchError, UpdateRejected
from core.update.floor import SeenFloor
from core.update.updater import HelperInstaller, Installer, Outcome, UpdateConfig, Updater

__all__ = [
    "HelperInstaller",
    "Installer",
    "Outcome",
    "SeenFloor",
    "UpdateConfig",
    "UpdateError",
    "UpdateFetchError",
    "UpdateRejected",
    "Updater",
]
