"""Errors in words: every package's error family reaches the employee as a title, a detail
and a next step with a stable code, and never as a class name, an errno or a traceback.

One concrete error of each package's tree (auth, controlplane, policy, posture, proxy,
settings, wg_backends, the helper client, the engine), raised for real where that is
cheap (a refused TCP connection, a missing helper socket, a helper that says no, a file
that is not there), goes through ``core.engine.errors.explain``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.auth.errors import (
    ClockSkewError,
    LoginDenied,
    LoginTimeout,
    NoSecretStoreError,
    ProviderUnreachable,
    ReauthRequired,
    SecretStoreError,
)
from core.controlplane import ControlPlaneClient
from core.controlplane.errors import (
    AuthenticationError,
    CaptivePortalError,
    ControllerUnreachableError,
    ForbiddenError,
    InvalidAnswerError,
    PinMismatchError,
    ServerError,
)
from core.controlplane.models import Problem
from core.engine.api import MIN_REASON_LENGTH
from core.engine.errors import (
    PACKAGE_ERRORS,
    AlwaysOnError,
    HelperLostError,
    NoGatewayError,
    ReasonTooShortError,
    SignInRequiredError,
    explain,
)
from core.engine.localapi.errors import LocalApiError
from core.engine.state import ErrorInfo
from core.errors import CODES, UserFacing
from core.policy.errors import BundleExpiredError, BundleSignatureError, PolicyCacheError
from core.posture.errors import PostureConfigError, ToolFailedError, ToolMissingError
from core.proxy.errors import DestinationError, ProxyStartError
from core.settings.errors import SettingLockedError, SettingsFileError, SettingValueError
from core.tunnel import TunnelClient
from tests.wg_backends.fakes import plain_asyncio
from tests.wg_backends.inproc import Running, serve_in_thread
from tests.wg_backends.keys import PRIV, PUB
from wg_backends.errors import (
    BackendUnavailable,
    CommandError,
    HelperRefused,
    HelperUnavailable,
    ProtocolError,
    SpecError,
)
from wg_backends.spec import PeerSpec, TunnelSpec

pytestmark = pytest.mark.unit


def _words(info: ErrorInfo) -> str:
    return f"{info.title}\n{info.detail}\n{info.next_step}"


def _assert_in_words(info: ErrorInfo, exc: BaseException) -> None:
    """A title, a detail, a next step and a known code; no class name, errno, traceback."""
    assert info.title.strip()
    assert info.detail.strip()
    assert info.next_step.strip()
    assert info.code in CODES
    text = _words(info)
    for cls in type(exc).__mro__:
        if cls not in (object, BaseException):
            assert cls.__name__ not in text, f"class name {cls.__name__!r} shown: {text!r}"
    assert "Errno" not in text
    assert "WinError" not in text
    assert "Traceback" not in text


def _refused_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _real_connection_refused() -> ConnectionRefusedError:
    sock = socket.socket()
    try:
        sock.connect(("127.0.0.1", _refused_port()))
    except ConnectionRefusedError as exc:
        return exc
    finally:
        sock.close()
    raise AssertionError("the port unexpectedly accepted")


def _real_file_not_found(tmp: Path) -> OSError:
    try:
        (tmp / "missing" / "file.txt").read_text()
    except OSError as exc:
        return exc
    raise AssertionError("unreachable")


_PROBLEM_403 = Problem(title="Forbidden", status=403, detail="this device is revoked")

#: (family, a concrete error, the expected code)
CASES: list[tuple[str, Callable[[Path], BaseException], str]] = [
    ("auth", lambda _: LoginDenied("The provider refused the sign-in."), "sign_in_failed"),
    ("auth", lambda _: LoginTimeout("No answer from the browser in 300 s."), "sign_in_failed"),
    ("auth", lambda _: ReauthRequired("The refresh token was refused."), "signed_out"),
    ("auth", lambda _: SecretStoreError("The keyring is locked."), "sign_in_failed"),
    ("auth", lambda _: NoSecretStoreError("No Secret Service on D-Bus."), "sign_in_failed"),
    ("auth", lambda _: ClockSkewError("The ID token was issued 20 min ahead."), "clock_skew"),
    ("auth", lambda _: ProviderUnreachable("idp.example: connection refused"), "sign_in_failed"),
    (
        "controlplane",
        lambda _: ControllerUnreachableError("GET /v1/x: [Errno 111] Connection refused"),
        "controller_unreachable",
    ),
    ("controlplane", lambda _: PinMismatchError("GET /: pin mismatch"), "tls"),
    ("controlplane", lambda _: CaptivePortalError("GET /: HTML answer"), "captive_portal"),
    ("controlplane", lambda _: ForbiddenError(403, _PROBLEM_403), "device_revoked"),
    (
        "controlplane",
        lambda _: AuthenticationError(401, Problem(title="Unauthorized", status=401)),
        "signed_out",
    ),
    (
        "controlplane",
        lambda _: ServerError(503, Problem(title="Unavailable", status=503)),
        "controller_unreachable",
    ),
    ("controlplane", lambda _: InvalidAnswerError("GET /: content type is not JSON"), "internal"),
    ("policy", lambda _: BundleSignatureError("signed by an unknown key"), "policy_invalid"),
    ("policy", lambda _: BundleExpiredError("expired 3 min ago"), "policy_invalid"),
    ("policy", lambda _: PolicyCacheError("cannot write the cache"), "internal"),
    ("posture", lambda _: ToolMissingError(["/usr/bin/fwctl", "status"]), "internal"),
    (
        "posture",
        lambda _: ToolFailedError(["fwctl"], 1, "fwctl: permission denied"),
        "internal",
    ),
    ("posture", lambda _: PostureConfigError("interval must be > 0"), "setting_invalid"),
    ("proxy", lambda _: ProxyStartError("127.0.0.1:1080 is in use"), "internal"),
    ("proxy", lambda _: DestinationError("port 0 is not valid"), "bad_request"),
    ("settings", lambda _: SettingLockedError("set by IT", key="proxy_port"), "setting_locked"),
    ("settings", lambda _: SettingValueError("unknown setting 'prxy'"), "setting_invalid"),
    ("settings", lambda _: SettingsFileError("disk full"), "internal"),
    ("wg_backends", lambda _: SpecError("peers[0].endpoint: no port"), "policy_invalid"),
    ("wg_backends", lambda _: BackendUnavailable("wg-quick not found"), "internal"),
    ("wg_backends", lambda _: CommandError(["wg-quick", "up", "rt0"], 1, "boom"), "internal"),
    ("helper", lambda _: HelperUnavailable("helper not reachable"), "helper_unavailable"),
    ("helper", lambda _: HelperRefused("bad_spec", "endpoint missing"), "helper_refused"),
    ("helper", lambda _: HelperRefused("unauthorized", "uid 1001"), "helper_refused"),
    ("helper", lambda _: ProtocolError("helper speaks 2"), "unsupported_version"),
    ("engine", lambda _: AlwaysOnError("Always-on is set."), "always_on"),
    ("engine", lambda _: SignInRequiredError("Not signed in."), "signed_out"),
    ("engine", lambda _: NoGatewayError("The policy has no gateway."), "no_gateway"),
    ("engine", lambda _: ReasonTooShortError(), "reason_too_short"),
    ("engine", lambda _: HelperLostError(), "helper_unavailable"),
    ("foreign", lambda _: _real_connection_refused(), "controller_unreachable"),
    ("foreign", _real_file_not_found, "internal"),
    ("foreign", lambda _: ValueError("odd"), "internal"),
    ("foreign", lambda _: KeyError("x"), "internal"),
]


@pytest.mark.parametrize(
    ("family", "make", "code"),
    CASES,
    ids=[f"{family}-{i}" for i, (family, _, _) in enumerate(CASES)],
)
def test_every_family_is_explained_in_words(
    family: str, make: Callable[[Path], BaseException], code: str, tmp_path: Path
) -> None:
    exc = make(tmp_path)
    info = explain(exc, during="connecting")
    _assert_in_words(info, exc)
    assert info.code == code
    if isinstance(exc, UserFacing):
        # the error's own words are the ones shown (sign-in keeps its own next step)
        assert info.next_step == exc.next_step


@pytest.mark.parametrize("base", PACKAGE_ERRORS, ids=lambda c: c.__module__)
def test_each_package_base_has_the_user_facing_shape(base: type[BaseException]) -> None:
    exc = base("the message")
    assert isinstance(exc, UserFacing)
    assert exc.title
    assert exc.next_step
    assert exc.code in CODES
    assert "the message" in exc.detail


def test_sign_in_errors_keep_their_own_next_step_and_no_class_name() -> None:
    info = explain(LoginDenied("You declined the request."), during="signing in")
    assert info.title == "Sign-in was declined"
    assert info.detail == "You declined the request."
    assert info.next_step == LoginDenied.default_next_step
    given = explain(SecretStoreError("locked", "Unlock the wallet."), during="signing in")
    assert given.next_step == "Unlock the wallet."


def test_reauth_required_asks_to_sign_in() -> None:
    info = explain(ReauthRequired("The session ended."), during="refreshing the session")
    assert info.code == "signed_out"
    assert "Sign in" in info.next_step


def test_reason_too_short_names_the_minimum() -> None:
    info = explain(ReasonTooShortError(), during="disconnecting")
    assert str(MIN_REASON_LENGTH) in info.next_step
    assert info.code == "reason_too_short"


def test_a_real_refused_connection_says_the_controller_did_not_answer() -> None:
    """Through the real control-plane client and the adapter's ConnectionError wrapping."""

    async def fetch() -> BaseException:
        url = f"http://127.0.0.1:{_refused_port()}"
        async with ControlPlaneClient(url) as client:
            try:
                await client.discovery()
            except ControllerUnreachableError as exc:
                try:
                    raise ConnectionError(str(exc)) from exc
                except ConnectionError as offline:
                    return offline
        raise AssertionError("the controller unexpectedly answered")

    exc = asyncio.run(fetch())
    info = explain(exc, during="connecting")
    _assert_in_words(info, exc)
    assert info.code == "controller_unreachable"
    assert info.detail == "The controller did not answer (connection refused)."
    name = explain(httpx.ConnectError("[Errno -2] Name or service not known"), during="x")
    assert "Errno" not in name.detail


def test_an_os_error_becomes_its_strerror(tmp_path: Path) -> None:
    exc = _real_file_not_found(tmp_path)
    info = explain(exc, during="writing diagnostics")
    assert info.detail.startswith("No such file or directory")
    assert str(tmp_path / "missing" / "file.txt") in info.detail


def test_a_part_with_its_own_words_outside_the_table_is_shown_as_it_says() -> None:
    class LocalRefusal(Exception):
        title = "Not now"
        next_step = "Wait."
        code = "bad_request"

        @property
        def detail(self) -> str:
            return "busy"

    info = explain(LocalRefusal(), during="x")
    assert (info.title, info.detail, info.next_step, info.code) == (
        "Not now",
        "busy",
        "Wait.",
        "bad_request",
    )


# ------------------------------------------------------------ the real helper


def _spec() -> TunnelSpec:
    return TunnelSpec(
        interface="rtw0",
        addresses=("10.232.0.2/32",),
        peers=(
            PeerSpec(public_key=PUB, endpoint="10.231.0.1:51820", allowed_ips=("10.233.0.0/24",)),
        ),
        private_key=PRIV,
    )


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Running]:
    r = serve_in_thread(tmp_path)
    yield r
    r.stop()


@pytest.mark.integration
@plain_asyncio
async def test_a_refusing_helper_is_not_reported_as_not_running(
    helper: Running, tmp_path: Path
) -> None:
    owner = TunnelClient(helper.socket)
    await owner.up(_spec())
    other = TunnelClient(helper.socket)
    with pytest.raises(HelperRefused) as refused:
        await other.up(_spec())
    await other.close()
    await owner.close()
    with pytest.raises(HelperUnavailable) as missing:
        await TunnelClient(tmp_path / "nobody.sock", timeout=2).hello()

    said_no = explain(refused.value, during="connecting")
    absent = explain(missing.value, during="connecting")
    _assert_in_words(said_no, refused.value)
    _assert_in_words(absent, missing.value)
    assert said_no.code == "helper_refused"
    assert absent.code == "helper_unavailable"
    assert "not running" not in said_no.title
    assert absent.title == "The Rustronaut helper is not running"
    assert "rustronaut-helper" in absent.next_step


def _tree(base: type[BaseException]) -> list[type[BaseException]]:
    out = [base]
    for sub in base.__subclasses__():
        out += [c for c in _tree(sub) if c not in out]
    return out


_EVERY_CLASS = sorted(
    {
        cls
        for base in (*PACKAGE_ERRORS, LocalApiError)
        for cls in _tree(base)
        if cls.__module__.startswith(("core.", "wg_backends."))
    },
    key=lambda c: f"{c.__module__}.{c.__qualname__}",
)


@pytest.mark.parametrize("cls", _EVERY_CLASS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_class_of_every_tree_has_its_words(cls: type[BaseException]) -> None:
    """Class-level words on every error class (a subclass may only sharpen them)."""
    title, next_step, code = (getattr(cls, name) for name in ("title", "next_step", "code"))
    assert isinstance(title, str)
    assert title.strip()
    assert isinstance(next_step, str)
    assert next_step.strip()
    assert code in CODES
    for name in {c.__name__ for c in cls.__mro__} - {"object", "BaseException"}:
        assert name not in title
        assert name not in next_step
