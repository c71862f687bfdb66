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
from core.errors import GENERIC_NEXT_STEP, UserFacing, UserFacingError, translated
from core.i18n import QT_TRANSLATE_NOOP, translate
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

    title = QT_TRANSLATE_NOOP("core.engine.errors", "Something went wrong")
    next_step = GENERIC_NEXT_STEP
    code = "internal"


class SignInRequiredError(EngineError):
    """There is no usable sign-in."""

    title = QT_TRANSLATE_NOOP("core.engine.errors", "Sign-in needed")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.errors", "Choose Sign in and complete the sign-in in your browser."
    )
    code = "signed_out"


class NoGatewayError(EngineError):
    """The signed policy gives this device no gateway (the controller has none set up)."""

    title = QT_TRANSLATE_NOOP("core.engine.errors", "No gateway for this device")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.errors",
        "Ask IT: the controller has no WireGuard gateway configured for you yet.",
    )
    code = "no_gateway"


class AlwaysOnError(EngineError):
    """Disconnect refused: always-on is set by the organization."""

    title = QT_TRANSLATE_NOOP("core.engine.errors", "Always-on is required by your organization")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.errors", "Use the break-glass disconnect and give a reason; IT is told."
    )
    code = "always_on"


class ReasonTooShortError(EngineError):
    """A break-glass reason shorter than ``MIN_REASON_LENGTH`` characters (after trimming)."""

    title = QT_TRANSLATE_NOOP("core.engine.errors", "Give a reason")
    #: English on the class; each instance carries it in the installed language
    next_step = (
        f"Say why you need to turn the protection off, in at least {MIN_REASON_LENGTH} "
        "characters; IT is told."
    )
    code = "reason_too_short"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or translate(
                "core.engine.errors",
                "Your organization requires a reason of at least {count} characters.",
            ).format(count=MIN_REASON_LENGTH)
        )
        self.next_step = translate(
            "core.engine.errors",
            "Say why you need to turn the protection off, in at least {count} "
            "characters; IT is told.",
        ).format(count=MIN_REASON_LENGTH)


class HelperLostError(EngineError):
    """The privileged helper went away while the engine relied on it (crash, stopped)."""

    title = QT_TRANSLATE_NOOP("core.engine.errors", "The Rustronaut helper stopped")
    next_step = QT_TRANSLATE_NOOP(
        "core.engine.errors",
        "Restart the rustronaut-helper service (or restart the computer); if it keeps "
        "stopping, contact IT.",
    )
    code = "helper_unavailable"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or translate(
                "core.engine.errors", "The connection to the helper was lost; the tunnel is down."
            )
        )


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
_TLS_NEXT_STEP = QT_TRANSLATE_NOOP(
    "core.engine.errors",
    "Check the date and time, then your network; a corporate TLS inspector may need "
    "IT's certificate installed.",
)
_CUT = QT_TRANSLATE_NOOP("core.engine.errors", "The connection to the controller was cut.")
_LATE = QT_TRANSLATE_NOOP("core.engine.errors", "The controller did not answer in time.")
#: Words for the network failure at the root of a "controller unreachable" chain
#: (English; translated where used).
_NETWORK_WORDS: Mapping[type[BaseException], str] = {
    ConnectionRefusedError: QT_TRANSLATE_NOOP(
        "core.engine.errors", "The controller did not answer (connection refused)."
    ),
    ConnectionResetError: _CUT,
    ConnectionAbortedError: _CUT,
    BrokenPipeError: _CUT,
    socket.gaierror: QT_TRANSLATE_NOOP(
        "core.engine.errors", "The controller's name could not be found (DNS)."
    ),
    TimeoutError: _LATE,
    httpx.TimeoutException: _LATE,
    ssl.SSLError: QT_TRANSLATE_NOOP(
        "core.engine.errors", "The secure connection to the controller failed."
    ),
    httpx.RemoteProtocolError: QT_TRANSLATE_NOOP(
        "core.engine.errors", "The controller closed the connection unexpectedly."
    ),
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
            return translate("core.engine.errors", words)
    for exc in reversed(chain):
        if isinstance(exc, OSError) and exc.strerror:
            return translate(
                "core.engine.errors", "The controller could not be reached: {reason}."
            ).format(reason=exc.strerror)
    return None


def _own_words(exc: BaseException, _chain: Sequence[BaseException], _during: str) -> ErrorInfo:
    """An error that carries its words (``core.errors.UserFacing``)."""
    assert isinstance(exc, UserFacing)
    title = translated(exc, "title")
    return ErrorInfo(
        title=title,
        detail=_scrub(exc.detail) or title,
        next_step=translated(exc, "next_step"),
        code=exc.code,
    )


def _unreachable(exc: BaseException, chain: Sequence[BaseException], during: str) -> ErrorInfo:
    """The controller did not answer: say how (refused, DNS, timeout), not which errno."""
    words = _network_words(chain)
    if words is None and isinstance(exc, UserFacing):
        words = _scrub(exc.detail)
    return ErrorInfo(
        title=translate("core.engine.errors", "Controller unreachable"),
        detail=words
        or translate("core.engine.errors", "Could not reach the controller while {during}.").format(
            during=during
        ),
        next_step=translate("core.controlplane.errors", _UNREACHABLE_NEXT_STEP),
        code="controller_unreachable",
    )


def _tls(exc: BaseException, _chain: Sequence[BaseException], _during: str) -> ErrorInfo:
    # ``verify_message`` ("certificate has expired") is set only when ssl raised it
    reason = getattr(exc, "verify_message", None) or ""
    detail = (
        translate(
            "core.engine.errors",
            "The connection to the controller could not be verified: {reason}.",
        ).format(reason=reason)
        if reason
        else translate(
            "core.engine.errors", "The connection to the controller could not be verified."
        )
    )
    return ErrorInfo(
        title=translate("core.engine.errors", "Secure connection failed"),
        detail=detail,
        next_step=translate("core.engine.errors", _TLS_NEXT_STEP),
        code="tls",
    )


def _os_error(exc: BaseException, _chain: Sequence[BaseException], during: str) -> ErrorInfo:
    """A local OSError (file, folder, device): its ``strerror`` and file, no errno."""
    assert isinstance(exc, OSError)
    what = (
        exc.strerror or _scrub(str(exc)) or translate("core.engine.errors", "a system call failed")
    )
    what = f"{what[:1].upper()}{what[1:]}"
    detail = (
        translate("core.engine.errors", "{what}: {file}.").format(what=what, file=exc.filename)
        if exc.filename
        else f"{what}."
    )
    return ErrorInfo(
        title=_problem_while(during),
        detail=detail,
        next_step=translate("core.errors", GENERIC_NEXT_STEP),
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

    The words are in the installed language (``core.i18n``); ``during`` is given already
    translated by the caller. Pure; never raises; safe from any thread. The result names no
    exception class and no errno, and always has a next step and a ``code`` (see the module
    docstring).
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


def _problem_while(during: str) -> str:
    return translate("core.engine.errors", "Problem while {during}").format(during=during)


def _unknown(during: str, message: str = "") -> ErrorInfo:
    return ErrorInfo(
        title=_problem_while(during),
        detail=translate("core.engine.errors", "Something unexpected went wrong: {message}").format(
            message=message
        )
        if message
        else translate("core.engine.errors", "Something unexpected went wrong."),
        next_step=translate("core.errors", GENERIC_NEXT_STEP),
        code="internal",
    )
