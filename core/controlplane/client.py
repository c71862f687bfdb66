"""The async httpx client of the control-plane API (error tree: see the package docstring)."""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import hashlib
import hmac
import ssl
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import httpx
import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.clock import TrustedTime, shared
from core.controlplane.errors import (
    ApiRefusedError,
    AuthenticationError,
    CaptivePortalError,
    ConflictError,
    ControllerUnreachableError,
    ControlPlaneError,
    ForbiddenError,
    InvalidAnswerError,
    NotFoundError,
    PinMismatchError,
    ProxyFailedError,
    RateLimitedError,
    RejectedError,
    ServerError,
)
from core.controlplane.models import (
    BREAK_GLASS_REASON_MAX,
    AuditRecord,
    BreakGlassReport,
    BundleResponse,
    Discovery,
    Enrollment,
    EnrollRequest,
    Event,
    NonceResponse,
    PostureResult,
    PostureSubmission,
    Problem,
    RelayKeyRequest,
)
from core.controlplane.portal import (
    PortalProbe,
    portal_sign,
    probe_portal,
)
from core.controlplane.proxy import ProxyChoice, ProxyRunner, redact_proxy_url, resolve_proxy
from core.wire.canonical import check_depth
from core.wire.telemetry import DecisionAck, DecisionSubmission

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_BUNDLE_ANSWER_BYTES",
    "MAX_EVENT_BYTES",
    "ApiRefusedError",
    "AuthenticationError",
    "BearerAuth",
    "CaptivePortalError",
    "ConflictError",
    "ControlPlaneClient",
    "ControlPlaneError",
    "ControllerUnreachableError",
    "ForbiddenError",
    "InvalidAnswerError",
    "NotFoundError",
    "PinMismatchError",
    "ProxyFailedError",
    "RateLimitedError",
    "RejectedError",
    "ServerError",
    "pin_context",
    "spki_sha256",
]

MAX_ANSWER_BYTES = 1024 * 1024
MAX_BUNDLE_ANSWER_BYTES = 33 * 1024 * 1024
MAX_EVENT_BYTES = 64 * 1024
MAX_PROBLEM_BYTES = 16 * 1024
_T = TypeVar("_T")


class BearerAuth(httpx.Auth):
    """Sends ``Authorization: Bearer <token>``; ``token`` is a string or a zero-arg getter.

    The auth package's refreshing flow can replace this with its own ``httpx.Auth``.
    """

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the token (read at send time)."""
        token = self._token() if callable(self._token) else self._token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def spki_sha256(cert_der: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (the pin format)."""
    cert = x509.load_der_x509_certificate(cert_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _default_ssl_context() -> ssl.SSLContext:
    import truststore

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


_PIN_REFUSED = "server key does not match the configured SPKI pin"


def _chain_der(obj: ssl.SSLObject) -> list[bytes]:
    """DER certificates of the peer: the verified chain if known, else the leaf."""
    inner = getattr(obj, "_sslobj", None)
    for name in ("get_verified_chain", "get_unverified_chain"):
        getter = getattr(inner, name, None)
        if getter is None:
            continue
        try:
            chain = getter() or []
            ders = [c.public_bytes(ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
        except (ssl.SSLError, ValueError, AttributeError):
            continue
        if ders:
            return ders
    leaf = obj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _matches(ders: Sequence[bytes], pins: Sequence[str]) -> bool:
    found = False
    for der in ders:
        digest = spki_sha256(der)
        # Compare with every pin in constant time; no early exit on a hit.
        for pin in pins:
            found |= hmac.compare_digest(digest, pin)
    return found


def pin_context(context: ssl.SSLContext, pins: str | Sequence[str]) -> ssl.SSLContext:
    """Make ``context`` refuse, during the TLS handshake, a server whose chain has no
    certificate whose SubjectPublicKeyInfo SHA-256 (base64) is among ``pins``.

    The check runs right after the chain verification (truststore's or the stdlib's)
    and before any HTTP byte — the bearer token never reaches an unpinned server. Works
    on a stdlib ``ssl.SSLContext`` and on ``truststore.SSLContext`` (which keeps a stdlib
    context inside). Mutates and returns ``context``.
    """
    wanted = (pins,) if isinstance(pins, str) else tuple(pins)
    inner: ssl.SSLContext = getattr(context, "_ctx", context)
    parent: type[ssl.SSLObject] = inner.sslobject_class

    class PinnedSSLObject(parent):  # type: ignore[valid-type,misc]
        def do_handshake(self) -> None:
            super().do_handshake()
            if not _matches(_chain_der(self), wanted):
                raise ssl.SSLCertVerificationError(_PIN_REFUSED)

    inner.sslobject_class = PinnedSSLObject
    return context


_STATUS_ERRORS: dict[int, type[ApiRefusedError]] = {
    400: RejectedError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: RejectedError,
    422: RejectedError,
}


ProxySetting = Literal["system"] | str | None


class ControlPlaneClient:
    """One controller at ``base_url``. Async; use from one event loop.

    ``auth`` adds the user's bearer token to the device calls (discovery goes without).
    ``transport`` replaces the network (tests; no proxy is then used). ``spki_pin``: one
    or several base64 SHA-256 of a SubjectPublicKeyInfo (any certificate of the server's
    chain may match), enforced during the TLS handshake (``pin_context``), so no request
    and no token reaches a server with another key, and checked again on every HTTPS
    answer. ``verify`` replaces the trust store (tests).

    ``proxy``: ``"system"`` (default) resolves, before the first request, the proxy the
    environment (``HTTPS_PROXY``/``NO_PROXY``...) or the OS settings or PAC file give
    for ``base_url`` (``core.controlplane.proxy.resolve_proxy``; ``proxy_runner`` and
    ``proxy_env`` are its seams); a URL forces that proxy, None goes direct.
    ``portal_probe`` (opt-in, see ``core.controlplane.portal``) is fetched after a TLS
    verification failure to tell a captive portal from other TLS trouble.

    Every answer's HTTP ``Date`` (from the pinned controller, not a portal) is recorded
    in ``trusted`` (``core.clock.shared()`` by default): the policy store judges expiry
    against it, and ``clock_skew_s`` says how far this computer's clock is off.

    Answers that look like a captive portal (HTML, a redirect off-host, 511) raise
    ``CaptivePortalError``; they are never used. Methods raise ``ControlPlaneError``
    subclasses only.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        spki_pin: str | Sequence[str] | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | None = None,
        proxy: ProxySetting = "system",
        proxy_runner: ProxyRunner | None = None,
        proxy_env: Mapping[str, str] | None = None,
        portal_probe: PortalProbe | None = None,
        trusted: TrustedTime | None = None,
        event_silence_s: float = 45.0,
    ) -> None:
        # The controller sends an event-stream keepalive every 15 s: three missed ones
        # mean it accepts but no longer answers, which must not look "connected".
        self._event_silence_s = event_silence_s
        self._auth = auth
        self._time = trusted if trusted is not None else shared()
        self._base = httpx.URL(base_url.rstrip("/"))
        self._timeout = timeout
        self._transport = transport
        self._proxy_setting: ProxySetting = None if transport is not None else proxy
        self._proxy_runner = proxy_runner
        self._proxy_env = proxy_env
        self._portal_probe = portal_probe
        self._proxy: ProxyChoice | None = None
        self._http_lock = asyncio.Lock()
        self._closed = False
        self._pins: tuple[str, ...] = (
            ()
            if spki_pin is None
            else (spki_pin,)
            if isinstance(spki_pin, str)
            else tuple(spki_pin)
        )
        context = verify if verify is not None else _default_ssl_context()
        if self._pins:
            context = pin_context(context, self._pins)
        self._context = context
        self._http: httpx.AsyncClient | None = None
        if self._proxy_setting != "system":
            self._http = self._make_http(
                self._proxy_setting, "the configured proxy" if proxy else "no proxy"
            )

    def _make_http(self, proxy: str | None, source: str) -> httpx.AsyncClient:
        self._proxy = ProxyChoice(proxy, source)
        # trust_env stays False: the environment's proxy variables are applied by
        # resolve_proxy (with NO_PROXY), and .netrc credentials must never be sent.
        return httpx.AsyncClient(
            base_url=str(self._base),
            transport=self._transport,
            proxy=proxy,
            timeout=httpx.Timeout(self._timeout),
            verify=self._context,
            follow_redirects=False,
            trust_env=False,
            headers={"Accept": "application/json"},
        )

    async def _client(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use once the system proxy is resolved."""
        if self._http is not None:
            return self._http
        async with self._http_lock:
            if self._http is None:
                if self._closed:
                    raise ControllerUnreachableError("the client is closed")
                choice = await resolve_proxy(
                    str(self._base), env=self._proxy_env, runner=self._proxy_runner
                )
                self._http = self._make_http(choice.url, choice.source)
        return self._http

    @property
    def clock_skew_s(self) -> float | None:
        """Local − controller in seconds (+ = this computer is ahead), the median of the
        last few answers' ``Date``; None until an answer carried one."""
        return self._time.skew_s

    @property
    def proxy(self) -> ProxyChoice | None:
        """The proxy in use and where it came from (None before the first request)."""
        return self._proxy

    async def aclose(self) -> None:
        """Close connections. Idempotent."""
        self._closed = True
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> ControlPlaneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # plumbing --------------------------------------------------------------------
    def _check_portal(self, response: httpx.Response, what: str) -> None:
        """Refuse an answer that a captive portal gave in place of the controller."""
        sign = portal_sign(response, self._base)
        if sign is not None:
            reason, portal_url = sign
            raise CaptivePortalError(f"{what}: {reason}", portal_url=portal_url)

    async def _failure(self, what: str, exc: httpx.HTTPError) -> ControllerUnreachableError:
        """The error for a request that got no answer: pin, proxy, portal or network."""
        if _PIN_REFUSED in str(exc):
            return PinMismatchError(f"{what}: {_PIN_REFUSED}")
        proxy = self._proxy
        if (
            proxy is not None
            and proxy.url is not None
            and isinstance(exc, httpx.ProxyError | httpx.ConnectError | httpx.ConnectTimeout)
            and not _is_tls_failure(exc)
        ):
            shown = redact_proxy_url(proxy.url)
            return ProxyFailedError(
                f"{what}: through the proxy {shown} ({proxy.source}): {exc}",
                proxy=shown,
                source=proxy.source,
            )
        if self._portal_probe is not None and _is_tls_failure(exc):
            verdict = await probe_portal(
                self._portal_probe, proxy=proxy.url if proxy is not None else None
            )
            if verdict.verdict == "portal":
                return CaptivePortalError(
                    f"{what}: TLS failed and {verdict.detail}: {exc}", portal_url=verdict.location
                )
        return ControllerUnreachableError(f"{what}: {exc}")

    def _note_date(self, response: httpx.Response) -> None:
        """Record the controller's clock from the answer's ``Date`` (RFC 9110 §6.6.1).

        Called only after the pin and portal checks, so the time is the controller's. The
        header has whole seconds and is written when the answer starts: its middle
        second is the best guess of the controller's time on arrival.
        """
        value = response.headers.get("date")
        if not value:
            return
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return
        if when.tzinfo is None:  # "-0000": HTTP dates are always UTC (GMT)
            when = when.replace(tzinfo=datetime.UTC)
        self._time.observe(when.timestamp() + 0.5)

    def _check_pin(self, response: httpx.Response) -> None:
        """Second line of defence: the answer came over a pinned connection."""
        if not self._pins or response.url.scheme != "https":
            return
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        if ssl_object is None or not _matches(_chain_der(ssl_object), self._pins):
            raise PinMismatchError("the controller's key does not match a configured pin")

    async def _read_capped(self, response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise InvalidAnswerError(f"answer of {declared} bytes is over the {cap} byte cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise InvalidAnswerError(f"answer is over the {cap} byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _refusal(self, response: httpx.Response) -> ApiRefusedError:
        raw = await self._read_capped(response, MAX_PROBLEM_BYTES)
        try:
            check_depth(raw, what="error answer")  # a 30,000-deep one raised RecursionError
            problem = msgspec.json.decode(raw, type=Problem)
        except ValueError:  # DecodeError, too deep, not UTF-8 (UnicodeDecodeError)
            problem = Problem(title=response.reason_phrase, status=response.status_code)
        status = response.status_code
        if status == 429:
            hint = response.headers.get("retry-after", "")
            return RateLimitedError(status, problem, float(hint) if hint.isdigit() else None)
        if status >= 500:
            return ServerError(status, problem)
        return _STATUS_ERRORS.get(status, ApiRefusedError)(status, problem)

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[_T],
        *,
        body: Any = None,
        authed: bool = True,
        cap: int = MAX_ANSWER_BYTES,
        expect: int = 200,
    ) -> _T:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        http = await self._client()
        request = http.build_request(method, path, content=content, headers=headers)
        try:
            response = await http.send(request, auth=self._auth if authed else None, stream=True)
        except httpx.HTTPError as exc:
            raise await self._failure(f"{method} {path}", exc) from exc
        try:
            self._check_pin(response)
            self._check_portal(response, f"{method} {path}")
            self._note_date(response)
            if response.status_code >= 300:
                raise await self._refusal(response)
            if response.status_code != expect:
                raise InvalidAnswerError(f"{method} {path}: unexpected {response.status_code}")
            if expect == 204:  # No Content: nothing to read (``answer`` is ``NoneType``)
                return cast(_T, None)
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("application/json"):
                raise InvalidAnswerError(f"{method} {path}: content type {ctype!r} is not JSON")
            raw = await self._read_capped(response, cap)
            try:
                check_depth(raw, what=f"{method} {path} answer")
                return msgspec.json.decode(raw, type=answer)
            except ValueError as exc:  # DecodeError, too deep, not UTF-8
                raise InvalidAnswerError(f"{method} {path}: invalid answer: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ControllerUnreachableError(f"{method} {path}: {exc}") from exc
        finally:
            await response.aclose()

    # API -----------------------------------------------------------------------------
    async def discovery(self) -> Discovery:
        """``GET /.well-known/rustronaut`` (no token)."""
        return await self._call("GET", "/.well-known/rustronaut", Discovery, authed=False)

    async def enroll(self, request: EnrollRequest) -> Enrollment:
        """Enroll this device (public keys only). ``ConflictError`` if a key is taken."""
        return await self._call("POST", "/v1/devices", Enrollment, body=request, expect=201)

    async def posture_nonce(self, device_id: str) -> NonceResponse:
        """A fresh single-use nonce for the next report."""
        return await self._call(
            "POST", f"/v1/devices/{_seg(device_id)}/posture/nonce", NonceResponse
        )

    async def submit_posture(self, device_id: str, report_jws: str) -> PostureResult:
        """Submit the device-signed report; ``RejectedError`` if refused (forged, stale)."""
        return await self._call(
            "POST",
            f"/v1/devices/{_seg(device_id)}/posture",
            PostureResult,
            body=PostureSubmission(report=report_jws),
        )

    async def submit_decisions(self, device_id: str, batch_jws: str) -> DecisionAck:
        """Submit a device-signed batch of decision telemetry (``core.wire.telemetry``);
        a replayed ``seq`` is answered as a duplicate, a refused batch raises
        ``RejectedError``, a flood ``RateLimitedError``."""
        return await self._call(
            "POST",
            f"/v1/devices/{_seg(device_id)}/decisions",
            DecisionAck,
            body=DecisionSubmission(batch=batch_jws),
        )

    async def fetch_bundle(self, device_id: str) -> BundleResponse:
        """The signed bundle; the caller verifies it (``core.policy``) before any use.

        The answer's ``relay_cert`` (the device's relay client certificate, PEM, when the
        deployment has relays and the device a registered relay key) is kept as sent:
        only the helper uses it, and it checks the key in it against its own.
        """
        return await self._call(
            "GET",
            f"/v1/devices/{_seg(device_id)}/bundle",
            BundleResponse,
            cap=MAX_BUNDLE_ANSWER_BYTES,
        )

    async def put_relay_key(self, device_id: str, relay_key: str) -> None:
        """``PUT /v1/devices/{id}/relay-key``: register (or replace) the helper's relay key
        (base64url of the raw Ed25519 public key) for a device enrolled without it, or
        whose helper's key changed. Idempotent. The controller answers 204; the next
        bundle answer carries a relay certificate for the key (``BundleResponse.relay_cert``).
        ``RejectedError`` for a malformed key, ``NotFoundError`` from a controller without
        relays' support, ``ConflictError`` when another device holds the key.
        """
        await self._call(
            "PUT",
            f"/v1/devices/{_seg(device_id)}/relay-key",
            type(None),
            body=RelayKeyRequest(relay_key=relay_key),
            expect=204,
        )

    async def report_break_glass(self, device_id: str, reason: str) -> AuditRecord:
        """Tell the controller the user bypassed always-on on this device, and why.

        ``reason`` is stripped and, when longer than the controller keeps
        (``BREAK_GLASS_REASON_MAX`` characters), clipped with an ellipsis: a long
        explanation must not make the report fail. Raises ``ValueError`` for an empty
        reason (nothing is sent); otherwise ``ControlPlaneError`` subclasses. Not
        idempotent: each call is one audit record.
        """
        text = reason.strip()
        if not text:
            raise ValueError("a break-glass reason is required")
        if len(text) > BREAK_GLASS_REASON_MAX:
            text = text[: BREAK_GLASS_REASON_MAX - 1] + "\u2026"
        return await self._call(
            "POST",
            f"/v1/devices/{_seg(device_id)}/break-glass",
            AuditRecord,
            body=BreakGlassReport(reason=text),
            expect=201,
        )

    async def events(self, device_id: str) -> AsyncIterator[Event]:
        """Yield events from ``/v1/events`` until the server closes the stream.

        Raises ``ControlPlaneError`` subclasses; an event that does not match the schema
        or is over ``MAX_EVENT_BYTES`` ends the stream with ``InvalidAnswerError``.
        Cancel the consuming task to stop.
        """
        http = await self._client()
        request = http.build_request(
            "GET",
            "/v1/events",
            params={"device_id": device_id},
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=self._event_silence_s),
        )
        try:
            response = await http.send(request, auth=self._auth, stream=True)
        except httpx.HTTPError as exc:
            raise await self._failure("GET /v1/events", exc) from exc
        try:
            self._check_pin(response)
            self._check_portal(response, "GET /v1/events")
            self._note_date(response)
            if response.status_code >= 300:
                raise await self._refusal(response)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise InvalidAnswerError("event stream has the wrong content type")
            buffer = b""
            async for chunk in response.aiter_bytes():
                buffer += chunk.replace(b"\r\n", b"\n")
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    event = _parse_sse(block)
                    if event is not None:
                        yield event
                if len(buffer) > MAX_EVENT_BYTES:
                    raise InvalidAnswerError(f"an event is over {MAX_EVENT_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ControllerUnreachableError(f"event stream: {exc}") from exc
        finally:
            await response.aclose()


def _is_tls_failure(exc: BaseException) -> bool:
    """Whether a transport error was the TLS handshake failing (verification included)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "certificate" in text


def _seg(value: str) -> str:
    """A path segment; refuses values that could change the path."""
    if not value or any(c in value for c in "/?#%") or value in {".", ".."}:
        raise ValueError(f"bad identifier {value!r}")
    return value


def _parse_sse(block: bytes) -> Event | None:
    """One SSE block → Event (comments/keepalives → None). Raises ``InvalidAnswerError``."""
    data: list[bytes] = []
    kind = b""
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"data":
            data.append(value)
        elif name == b"event":
            kind = value
    if not data:
        return None
    try:
        raw = b"\n".join(data)
        check_depth(raw, what="event")
        event = msgspec.json.decode(raw, type=Event)
    except ValueError as exc:  # DecodeError, too deep, not UTF-8 (UnicodeDecodeError)
        raise InvalidAnswerError(f"invalid event: {exc}") from exc
    if kind and kind.decode("ascii", "replace") != event.type:
        raise InvalidAnswerError("event name and payload type differ")
    return event
