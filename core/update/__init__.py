"""Signed updates on Windows and macOS, the client's side (issue 19).

The :class:`~core.update.updater.Updater` fetches the signed update manifest from
``update_url``, verifies it with the pinned ``update_keys``
(:mod:`wg_backends.signed.update_manifest`: signature, expiry, this platform's file) and
refuses rollback (below the installed version, or below the highest manifest version
this client has seen, :class:`~core.update.floor.SeenFloor`). A newer release is handed
to the privileged helper as the manifest token alone: the helper verifies it again with
its *own* managed keys and floor, downloads the installer into its admin-only directory,
re-checks it and starts its installer detached (:mod:`wg_backends.helper.updates`).
That installer stops and replaces the helper and the agent, so the helper's answer only
means "started": :class:`~core.update.pending.PendingUpdate` keeps the version asked for
until a later run knows whether it is installed, and the schedule
(:mod:`core.update.schedule`) tells the employee "Updated to X" or "The update to X did
not install" then. MDM turns it off (``auto_update``) or pins a version
(``update_pin_version``). Linux is updated from the apt/dnf repository and never here.

Errors (:mod:`core.update.errors`; each a ``core.errors.UserFacingError`` whose title
and next step follow its ``update_*`` code, :func:`core.update.words.code_words`)::

    UpdateError (code)            anything raised by core.update    (update_failed, ...)
     ├── UpdateFetchError         the manifest could not be fetched (update_fetch)
     └── UpdateRejected           the manifest or the install was refused (``update_*``)
"""

from core.update.errors import UpdateError, UpdateFetchError, UpdateRejected
from core.update.floor import SeenFloor
from core.update.pending import PendingUpdate
from core.update.updater import (
    AnswerLost,
    HelperInstaller,
    Installer,
    Outcome,
    UpdateConfig,
    Updater,
)

__all__ = [
    "AnswerLost",
    "HelperInstaller",
    "Installer",
    "Outcome",
    "PendingUpdate",
    "SeenFloor",
    "UpdateConfig",
    "UpdateError",
    "UpdateFetchError",
    "UpdateRejected",
    "Updater",
]
