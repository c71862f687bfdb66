"""One place that turns failures into words for the employee: what happened, what next.

Every package's errors carry their own words (the ``core.errors.UserFacing`` shape:
``title``, ``detail``, ``next_step``, ``code``). :func:`explain` maps an exception to an
:class:`ErrorInfo` through tables keyed by exception class, walking each class's MRO;
it never looks at class names or message text. In order:

1. anywhere in the ``__cause__``/``__context__`` chain, the failures that tell the
   employee exactly what to do: a captive portal, a failed proxy, a pin mismatch, a
   certificate that did not verify (adapters re-raise "controller unreachable" as
   ``ConnectionError``; the portal behind it still wins);
2. the outermost error in the chain that has its own words (a package's error, found in
   :data:`_OWN` by class, or any other :class:`~core.errors.UserFacing`);
3. the outermost foreign error the :data:`_FOREIGN` table knows (``OSError`` and its
   network subclasses, ``ssl``, httpx transport errors): these become words, an
   ``OSError`` its ``strerror`` (never "[Errno 111]");
4. anything else: a generic title and "collect diagnostics", without the class name.

Errors::

    EngineError (core.errors.UserFacingError)   an engine-level refusal, with its words
     ├── SignInRequiredError      no usable sign-in              (signed_out)
     ├── NoGatewayError           the policy gives no gateway    (no_gateway)
     ├── AlwaysOnError            always-on refuses the request  (always_on)
     ├── ReasonTooShortError      break-glass reason too short   (reason_too_short)
     └── HelperLostError          the helper went away           (helper_unavailable)
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence

import httpx

from core.auth.errors import AuthError
from core.controlplane.errors import (
    CaptivePortalError,
    ControllerUnreachableError,
    ControlPlaneError,
    PinMismatchError,
    ProxyFailedError,
)
from core.engine.api import MIN_REASON_LENGTH
from core.engine.state import ErrorInfo
from core.errors import GENERIC_NEXT_STEP, UserFacing, UserFacingError
from core.policy.errors import PolicyError
from core.posture.errors import PostureError
from core.proxy.errors import ProxyError
from core.settings.errors import SettingsError
from wg_backends.errors import WgError

__all__ = [
    "PACKAGE_ERRORS",
    "AlwaysOnError",
    "EngineError",
    "HelperLostError",
    "NoGatewayError",
    "ReasonTooShortError",
    "SignInRequiredError",
    "captive_portal",
    "explain",
]


class EngineError(UserFacingError):
    """An engine-level refusal with its own user message."""

    title = "Something went wrong"
    next_step = GENERIC_NEXT_STEP
    code = "internal"


class SignInRequiredError(EngineError):
    """There is no usable sign-in."""

    title = "Sign-in needed"
    next_step = "Choose Sign in and complete the sign-in in your browser."
    code = "signed_out"


class NoGatewayError(EngineError):
    """The signed policy gives this device no gateway (the controller has none set up)."""

    title = "No gateway for this device"
    next_step = "Ask IT: the controller has no WireGuard gateway configured for you yet."
    code = "no_gateway"


class AlwaysOnError(EngineError):
    """Disconnect refused: always-on is set by the organization."""

    title = "Always-on is required by your organization"
    next_step = "Use the break-glass disconnect and give a reason; IT is told."
    code = "always_on"


class ReasonTooShortError(EngineError):
    """A break-glass reason shorter than ``MIN_REASON_LENGTH`` characters (after trimming)."""

    title = "Give a reason"
    next_step = (
        f"Say why you need to turn the protection off, in at least {MIN_REASON_LENGTH} "
        "characters; IT is told."
    )
    code = "reason_too_short"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or f"Your organization requires a reason of at least {MIN_REASON_LENGTH} characters."
        )


class HelperLostError(EngineError):
    """The privileged helper went away while the engine relied on it (crash, stopped)."""

    title = "The Rustronaut helper stopped"
    next_step = (
        "Restart the rustronaut-helper service (or restart the computer); if it keeps "
        "stopping, contact IT."
    )
    code = "helper_unavailable"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "The connection to the helper was lost; the tunnel is down.")


#: Every package's base error. Typed so that mypy proves each has the ``UserFacing``
#: shape (title, detail, next_step, code); tests/core/test_user_facing.py checks each
#: family's words.
PACKAGE_ERRORS: tuple[type[UserFacing], ...] = (
    AuthError,
    ControlPlaneError,
    EngineError,
    PolicyError,
    PostureError,
    ProxyError,
    SettingsError,
    WgError,
)

#: ``(the error found, the whole chain, during) -> words``
Describe = Callable[[BaseException, Sequence[BaseException], str], ErrorInfo]

_UNREACHABLE_NEXT_STEP = ControllerUnreachableError.next_step
_TLS_NEXT_STEP = (
    "Check the date and time, then your network; a corporate TLS inspector may need "
    "IT's certificate installed."
)
#: Words for the network failure at the root of a "controller unreachable" chain.
_NETWORK_WORDS: Mapping[type[BaseException], str] = {
    ConnectionRefusedError: "The controller did not answer (connection refused).",
    ConnectionResetError: "The connection to the controller was cut.",
    ConnectionAbortedError: "The connection to the controller was cut.",
    BrokenPipeError: "The connection to the controller was cut.",
    socket.gaierror: "The controller's name could not be found (DNS).",
    TimeoutError: "The controller did not answer in time.",
    httpx.TimeoutException: "The controller did not answer in time.",
    ssl.SSLError: "The secure connection to the controller failed.",
    httpx.RemoteProtocolError: "The controller closed the connection unexpectedly.",
}
_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*")
_CLASS_NAME = re.compile(r"\b(?:[a-z_]+\.)*[A-Z][A-Za-z]*(?:Error|Exception)\b:?\s*")


def _scrub(text: str) -> str:
    """A last line of defence for foreign text: no "[Errno N]", no "SomethingError:"."""
    return _CLASS_NAME.sub("", _ERRNO.sub("", text)).strip()


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in out and len(out) < 16:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def _lookup(
    cls: type[BaseException], table: Mapping[type[BaseException], Describe]
) -> Describe | None:
    """The entry for ``cls`` or its nearest base in ``table``."""
    return next((table[base] for base in cls.__mro__ if base in table), None)


def _network_words(chain: Sequence[BaseException]) -> str | None:
    """Words for the root network cause in ``chain`` (innermost first), if one is known."""
    for exc in reversed(chain):
        words = next((_NETWORK_WORDS[b] for b in type(exc).__mro__ if b in _NETWORK_WORDS), None)
        if words is not None:
            return words
    for exc in reversed(chain):
        if isinstance(exc, OSError) and exc.strerror:
            return f"The controller could not be reached: {exc.strerror}."
    return None


def _own_words(exc: BaseException, _chain: Sequence[BaseException], _during: str) -> ErrorInfo:
    """An error that carries its words (``core.errors.UserFacing``)."""
    assert isinstance(exc, UserFacing)
    return ErrorInfo(
        title=exc.title,
        detail=_scrub(exc.detail) or exc.title,
        next_step=exc.next_step,
        code=exc.code,
    )


def _unreachable(exc: BaseException, chain: Sequence[BaseException], during: str) -> ErrorInfo:
    """The controller did not answer: say how (refused, DNS, timeout), not which errno."""
    words = _network_words(chain)
    if words is None and isinstance(exc, UserFacing):
        words = _scrub(exc.detail)
    return ErrorInfo(
        title="Controller unreachable",
        detail=words or f"Could not reach the controller while {during}.",
        next_step=_UNREACHABLE_NEXT_STEP,
        code="controller_unreachable",
    )


def _tls(exc: BaseException, _chain: Sequence[BaseException], _during: str) -> ErrorInfo:
    # ``verify_message`` ("certificate has expired") is set only when ssl raised it
    reason = getattr(exc, "verify_message", None) or ""
    return ErrorInfo(
        title="Secure connection failed",
        detail="The connection to the controller could not be verified"
        + (f": {reason}." if reason else "."),
        next_step=_TLS_NEXT_STEP,
        code="tls",
    )


def _os_error(exc: BaseException, _chain: Sequence[BaseException], during: str) -> ErrorInfo:
    """A local OSError (file, folder, device): its ``strerror`` and file, no errno."""
    assert isinstance(exc, OSError)
    what = exc.strerror or _scrub(str(exc)) or "a system call failed"
    where = f": {exc.filename}" if exc.filename else ""
    return ErrorInfo(
        title=f"Problem while {during}",
        detail=f"{what[:1].upper()}{what[1:]}{where}.",
        next_step=GENERIC_NEXT_STEP,
        code="internal",
    )


#: Errors that tell the employee exactly what to do: looked for anywhere in the chain.
_ANYWHERE: Mapping[type[BaseException], Describe] = {
    CaptivePortalError: _own_words,
    ProxyFailedError: _own_words,
    PinMismatchError: _own_words,
    ssl.SSLCertVerificationError: _tls,
}
#: Every package's base error (each carries its words) and the ones worded here.
_OWN: Mapping[type[BaseException], Describe] = {
    EngineError: _own_words,
    AuthError: _own_words,
    ControlPlaneError: _own_words,
    ControllerUnreachableError: _unreachable,
    PolicyError: _own_words,
    PostureError: _own_words,
    ProxyError: _own_words,
    SettingsError: _own_words,
    WgError: _own_words,
}
#: Foreign errors that reach the engine unmapped.
_FOREIGN: Mapping[type[BaseException], Describe] = {
    httpx.TransportError: _unreachable,
    ssl.SSLError: _tls,
    ConnectionError: _unreachable,
    TimeoutError: _unreachable,
    socket.gaierror: _unreachable,
    OSError: _os_error,
}


def captive_portal(exc: BaseException) -> CaptivePortalError | None:
    """The captive-portal error behind ``exc`` (itself or a cause), else None.

    For the engine: an "offline" failure that is a portal deserves the portal message.
    """
    return next((e for e in _chain(exc) if isinstance(e, CaptivePortalError)), None)


def explain(exc: BaseException, *, during: str) -> ErrorInfo:
    """Map ``exc`` (raised while ``during``, e.g. "connecting") to an ``ErrorInfo``.

    Pure; never raises; safe from any thread. The result names no exception class and
    no errno, and always has a next step and a ``code`` (see the module docstring).
    """
    try:
        return _explain(exc, during)
    except Exception:  # a describer bug must not hide the original failure's words
        return _unknown(during)


def _explain(exc: BaseException, during: str) -> ErrorInfo:
    chain = _chain(exc)
    for cls, describe in _ANYWHERE.items():
        found = next((e for e in chain if isinstance(e, cls)), None)
        if found is not None:
            return describe(found, chain, during)
    for e in chain:
        describe_own = _lookup(type(e), _OWN)
        if describe_own is not None:
            return describe_own(e, chain, during)
        if isinstance(e, UserFacing):  # a part not in the table that brings its own words
            return _own_words(e, chain, during)
    for e in chain:
        describe_foreign = _lookup(type(e), _FOREIGN)
        if describe_foreign is not None:
            return describe_foreign(e, chain, during)
    message = _scrub(str(exc))
    return _unknown(during, message)


def _unknown(during: str, message: str = "") -> ErrorInfo:
    return ErrorInfo(
        title=f"Problem while {during}",
        detail=f"Something unexpected went wrong: {message}"
        if message
        else "Something unexpected went wrong.",
        next_step=GENERIC_NEXT_STEP,
        code="internal",
    )
