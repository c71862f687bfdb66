"""The one exception tree of ``wg_backends``.

::

    WgError                      base of everything this package raises
    ├── SpecError (ValueError)   a TunnelSpec (or a field of it) is invalid; names the field
    ├── BackendError             a backend could not do what was asked
    │   ├── BackendUnavailable   the backend's tools are missing on this machine
    │   ├── CommandError         an OS tool failed: carries argv, exit code and stderr
    │   └── TunnelStateError     wrong state for the request (not up, other tunnel up)
    └── HelperError              talking to the privileged helper failed
        ├── ProtocolError        malformed, oversized or unexpected message / frame
        ├── HelperUnavailable    no helper listening (socket missing, refused, timed out)
        └── HelperRefused        the helper answered with an error: ``code`` + ``message``
            (codes: unauthorized, busy, bad_request, bad_spec, backend, not_up, internal)

Foreign errors (``OSError``, ``msgspec`` errors, ``subprocess`` failures) are mapped to
these at the package boundary; callers catch ``WgError`` or a branch of it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CommandError",
    "HelperError",
    "HelperRefused",
    "HelperUnavailable",
    "ProtocolError",
    "SpecError",
    "TunnelStateError",
    "WgError",
]


class WgError(Exception):
    """Base of every error raised by ``wg_backends``."""


class SpecError(WgError, ValueError):
    """A ``TunnelSpec`` is invalid. The message names the field and what is wrong.

    Subclasses ``ValueError`` so that msgspec turns it into a ``ValidationError`` when it is
    raised from ``__post_init__`` while decoding.
    """


class BackendError(WgError):
    """A backend failed to bring a tunnel up/down or to read its status."""


class BackendUnavailable(BackendError):
    """The backend's tools are not installed or not usable here."""


class CommandError(BackendError):
    """An OS tool exited non-zero (or could not be started).

    ``argv`` is the exact command line, ``returncode`` its exit status (-1 when it could not
    be started or timed out), ``stderr`` its (truncated) error output.
    """

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr[-2000:]
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {self.stderr.strip()}")


class TunnelStateError(BackendError):
    """The request does not fit the current state (e.g. ``down`` with no tunnel)."""


class HelperError(WgError):
    """Talking to the privileged helper failed."""


class ProtocolError(HelperError):
    """A frame or message broke the helper protocol (size, JSON, schema, version)."""


class HelperUnavailable(HelperError):
    """No helper is reachable at the socket path (missing, refused, timed out)."""


class HelperRefused(HelperError):
    """The helper answered a request with an error.

    ``code`` is one of the protocol's error codes (see docs/helper-protocol.md).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
