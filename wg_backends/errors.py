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
        ├── NoTunnelSockets      no marked tunnel sockets to be had (no tunnel, refused)
        └── HelperRefused        the helper answered with an error: ``helper_code`` +
            ``message`` (unauthorized, busy, bad_request, bad_spec, backend, not_up,
            not_owner, always_on, too_many_connections, ...)

Foreign errors (``OSError``, ``msgspec`` errors, ``subprocess`` failures) are mapped to
these at the package boundary; callers catch ``WgError`` or a branch of it.

Every error carries the employee's words: class-level ``title``, ``next_step`` and
``code`` (a stable cause: ``helper_unavailable`` when no helper answers,
``helper_refused`` when one answered "no") and ``detail`` (the message). That is the
``core.errors.UserFacing`` shape, met structurally: this package imports nothing from
``core``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CommandError",
    "HelperError",
    "HelperRefused",
    "HelperUnavailable",
    "NoTunnelSockets",
    "ProtocolError",
    "SpecError",
    "TunnelStateError",
    "WgError",
]


_GENERIC_NEXT_STEP = (
    "Try again. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT."
)
_HELPER_SERVICE = (
    "Start the rustronaut-helper service (or restart the computer); if it keeps "
    "stopping, reinstall Rustronaut or contact IT."
)


class WgError(Exception):
    """Base of every error raised by ``wg_backends``."""

    title: str = "The tunnel could not be set up"
    next_step: str = _GENERIC_NEXT_STEP
    code: str = "internal"

    @property
    def detail(self) -> str:
        """The message, for the employee (``str(self)``)."""
        return str(self)


class SpecError(WgError, ValueError):
    """A ``TunnelSpec`` is invalid. The message names the field and what is wrong.

    Subclasses ``ValueError`` so that msgspec turns it into a ``ValidationError`` when it is
    raised from ``__post_init__`` while decoding.
    """

    title = "The tunnel settings are not valid"
    next_step = (
        "Contact IT: the tunnel settings from the controller are not usable on this "
        "device. Collect diagnostics (rustronaut diag) for them."
    )
    code = "policy_invalid"


class BackendError(WgError):
    """A backend failed to bring a tunnel up/down or to read its status."""

    title = "WireGuard could not set up the tunnel"


class BackendUnavailable(BackendError):
    """The backend's tools are not installed or not usable here."""

    title = "WireGuard is not installed"
    next_step = "Install WireGuard (or reinstall Rustronaut), or ask IT."


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

    title = "The tunnel is busy"
    next_step = "Wait a moment and try again."


class HelperError(WgError):
    """Talking to the privileged helper failed."""

    title = "The Rustronaut helper did not answer"
    next_step = _HELPER_SERVICE
    code = "helper_unavailable"


class ProtocolError(HelperError):
    """A frame or message broke the helper protocol (size, JSON, schema, version)."""

    title = "The Rustronaut helper does not match this app"
    next_step = "Update or reinstall Rustronaut so the app and its helper match, or ask IT."
    code = "unsupported_version"


class HelperUnavailable(HelperError):
    """No helper is reachable at the socket path (missing, refused, timed out)."""

    title = "The Rustronaut helper is not running"


#: What the employee is told for each of the helper protocol's error codes.
_REFUSAL_WORDS: Mapping[str, tuple[str, str]] = {
    "bad_bundle": (
        "The Rustronaut helper refused the policy",
        "Connect again to fetch fresh policy. If it keeps happening, collect diagnostics "
        "(rustronaut diag) and contact IT.",
    ),
    "unauthorized": (
        "The Rustronaut helper refused this account",
        "Ask IT to allow your account to use Rustronaut on this computer.",
    ),
    "busy": (
        "The Rustronaut helper is busy",
        "Wait a moment and connect again. If another account's tunnel is up, disconnect it first.",
    ),
    "bad_spec": (
        "The Rustronaut helper refused the tunnel settings",
        "Contact IT: the tunnel settings from the controller are not accepted on this "
        "device. Collect diagnostics (rustronaut diag) for them.",
    ),
    "backend": (
        "WireGuard could not set up the tunnel",
        "Check that WireGuard is installed. If it is, collect diagnostics "
        "(rustronaut diag) and contact IT.",
    ),
    "not_up": ("The tunnel is not up", "Connect again."),
    "not_owner": (
        "The tunnel belongs to another account",
        "Only the account that connected (or an administrator) can disconnect it.",
    ),
    "always_on": (
        "Your organization keeps this connection on",
        "Disconnect with the break-glass option and give a reason, or ask IT.",
    ),
    "unsupported": (
        "This computer's helper cannot do that",
        "Update Rustronaut; if it keeps happening, collect diagnostics (rustronaut diag) "
        "and contact IT.",
    ),
    "rate_limited": ("The Rustronaut helper is busy", "Wait a moment and try again."),
    "too_many_connections": (
        "Too many connections to the Rustronaut helper",
        "Close other Rustronaut windows or commands and try again.",
    ),
    "unsupported_version": (
        "The Rustronaut helper does not match this app",
        "Update or reinstall Rustronaut so the app and its helper match, or ask IT.",
    ),
}


class HelperRefused(HelperError):
    """The helper answered a request with an error (so it runs: not "unavailable").

    ``helper_code`` is one of the protocol's error codes (see docs/helper-protocol.md);
    ``code`` is ``helper_refused`` (``unsupported_version`` for a version refusal), and
    ``title``/``next_step`` are chosen by ``helper_code``.
    """

    title = "The Rustronaut helper refused the request"
    next_step = _GENERIC_NEXT_STEP
    code = "helper_refused"

    def __init__(self, helper_code: str, message: str) -> None:
        self.helper_code = helper_code
        self.message = message
        words = _REFUSAL_WORDS.get(helper_code)
        if words is not None:
            self.title, self.next_step = words
        if helper_code == "unsupported_version":
            self.code = "unsupported_version"
        super().__init__(f"{helper_code}: {message}")

    @property
    def detail(self) -> str:
        """The helper's own explanation."""
        return self.message or self.title


class NoTunnelSockets(HelperError):
    """The helper gave no marked tunnel sockets: no such tunnel, not its owner, helper
    unreachable or refusing. The decider then refuses the connection; it never falls back
    to the OS's routes. ``helper_code`` is the helper's error code ("" when unreachable).
    """

    title = "The tunnel is not available"
    next_step = "Connect again. If it keeps happening, collect diagnostics and contact IT."
    code = "tunnel_down"

    def __init__(self, message: str, helper_code: str = "") -> None:
        self.helper_code = helper_code
        super().__init__(message)
