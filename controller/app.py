"""The HTTP layer: Starlette routes from one operation table that also yields the OpenAPI.

Every operation is declared once in ``OPERATIONS`` (method, path, auth, body type, answer
type, statuses); ``create_app`` mounts them and ``controller.openapi`` renders the same
table as OpenAPI 3.1, so the contract cannot drift from the code. Cross-cutting rules:
bodies are capped (``max_body_bytes``) and decoded strictly into the shared models
(unknown fields, wrong types → 400); enrollment and login endpoints are rate limited
per client address; every refusal is an RFC 9457 ``application/problem+json`` document;
an unexpected exception is a 500 problem without internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from controller.config import admin_token_matches
from controller.errors import (
    ApiError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    problem_response,
)
from controller.oidc import DevOidcProvider
from controller.ratelimit import RateLimiter
from controller.service import ControllerService
from controller.storage.base import AuditEntry
from controller.tokens import Identity, TokenValidator
from core.controlplane.models import (
    ED25519_B64URL_PATTERN,
    AuditList,
    AuditRecord,
    BreakGlassReport,
    BundleResponse,
    DeviceInfo,
    DeviceList,
    Discovery,
    Enrollment,
    EnrollRequest,
    Jwks,
    NonceResponse,
    PostureResult,
    PostureSubmission,
    RecheckRequest,
    RelayKeyRequest,
    UserGroups,
    UserList,
)
from core.wire.policy import Resource, Rule
from core.wire.telemetry import DecisionAck, DecisionList, DecisionSubmission

__all__ = ["OPERATIONS", "Operation", "RelayDeviceList", "create_app"]

_log = logging.getLogger(__name__)
_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
_POLICY_ID_RE = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")
SSE_KEEPALIVE_S = 15.0

Auth = Literal["none", "user", "admin", "relay"]
Handler = Callable[["Ctx"], Awaitable[Any]]


class RelayDeviceList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``GET /v1/relay/devices``: the devices a relay may admit (issue 21) — every active
    device with a relay key, by id, with that key (raw Ed25519, base64url). A relay
    accepts a client certificate only when its device is listed with the same key."""

    devices: dict[
        Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:@-]{1,64}$")],
        Annotated[str, Meta(pattern=ED25519_B64URL_PATTERN)],
    ]


@dataclass(frozen=True)
class Operation:
    """One API operation: routing, auth, body/answer types and documented statuses."""

    method: str
    path: str
    op_id: str
    summary: str
    auth: Auth
    body: Any = None
    answer: Any = None
    status: int = 200
    errors: tuple[int, ...] = ()
    media: str = "application/json"
    path_params: tuple[str, ...] = ()
    query: tuple[tuple[str, bool], ...] = ()
    rate_limited: bool = False
    handler_name: str = ""
    tags: tuple[str, ...] = field(default=())


@dataclass
class Ctx:
    """What a handler gets: the request, the parsed body, the caller."""

    request: Request
    body: Any
    identity: Identity | None
    params: dict[str, str]


_U = (400, 401, 403, 404, 413, 429)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/.well-known/rustronaut",
        "getDiscovery",
        "Discovery document",
        "none",
        answer=Discovery,
        handler_name="discovery",
        tags=("client",),
    ),
    Operation(
        "POST",
        "/v1/devices",
        "enrollDevice",
        "Enroll a device for the token's user",
        "user",
        body=EnrollRequest,
        answer=Enrollment,
        status=201,
        errors=(400, 401, 409, 413, 422, 429, 503),
        rate_limited=True,
        handler_name="enroll",
        tags=("client",),
    ),
    Operation(
        "POST",
        "/v1/devices/{device_id}/posture/nonce",
        "issuePostureNonce",
        "A single-use nonce for the next posture report",
        "user",
        answer=NonceResponse,
        errors=(401, 403, 404),
        path_params=("device_id",),
        handler_name="nonce",
        tags=("client",),
    ),
    Operation(
        "POST",
        "/v1/devices/{device_id}/posture",
        "submitPosture",
        "Submit a signed posture report",
        "user",
        body=PostureSubmission,
        answer=PostureResult,
        errors=(400, 401, 403, 404, 413, 422),
        path_params=("device_id",),
        handler_name="posture",
        tags=("client",),
    ),
    Operation(
        "POST",
        "/v1/devices/{device_id}/decisions",
        "submitDecisions",
        "Submit a batch of decision telemetry signed by the device key (stored once per seq)",
        "user",
        body=DecisionSubmission,
        answer=DecisionAck,
        errors=(400, 401, 403, 404, 413, 422, 429),
        path_params=("device_id",),
        handler_name="decisions",
        tags=("client",),
    ),
    Operation(
        "GET",
        "/v1/devices/{device_id}/bundle",
        "getPolicyBundle",
        "The device's signed policy bundle (with its tunnel spec)",
        "user",
        answer=BundleResponse,
        errors=(401, 403, 404),
        path_params=("device_id",),
        handler_name="bundle",
        tags=("client",),
    ),
    Operation(
        "PUT",
        "/v1/devices/{device_id}/relay-key",
        "putRelayKey",
        "Register (or replace) the device's relay key: its relay certificates are issued to it",
        "user",
        body=RelayKeyRequest,
        status=204,
        errors=(400, 401, 403, 404, 413, 422),
        path_params=("device_id",),
        handler_name="relay_key",
        tags=("client",),
    ),
    Operation(
        "POST",
        "/v1/devices/{device_id}/break-glass",
        "reportBreakGlass",
        "Report a break-glass disconnect under always-on, with the user's reason (audited)",
        "user",
        body=BreakGlassReport,
        answer=AuditRecord,
        status=201,
        errors=(400, 401, 404, 413, 422),
        path_params=("device_id",),
        handler_name="break_glass",
        tags=("client",),
    ),
    Operation(
        "GET",
        "/v1/events",
        "streamEvents",
        "Server-sent events: policy_changed, device_revoked, posture_recheck",
        "user",
        errors=(400, 401, 403, 404),
        media="text/event-stream",
        query=(("device_id", True),),
        handler_name="events",
        tags=("client",),
    ),
    Operation(
        "GET",
        "/v1/admin/resources",
        "listResources",
        "All resources",
        "admin",
        answer=list[Resource],
        errors=(401,),
        handler_name="list_resources",
        tags=("admin",),
    ),
    Operation(
        "PUT",
        "/v1/admin/resources/{resource_id}",
        "putResource",
        "Create or replace a resource",
        "admin",
        body=Resource,
        answer=Resource,
        errors=(400, 401, 413),
        path_params=("resource_id",),
        handler_name="put_resource",
        tags=("admin",),
    ),
    Operation(
        "DELETE",
        "/v1/admin/resources/{resource_id}",
        "deleteResource",
        "Remove a resource",
        "admin",
        status=204,
        errors=(401, 404, 409),
        path_params=("resource_id",),
        handler_name="delete_resource",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/admin/rules",
        "listRules",
        "All rules",
        "admin",
        answer=list[Rule],
        errors=(401,),
        handler_name="list_rules",
        tags=("admin",),
    ),
    Operation(
        "PUT",
        "/v1/admin/rules/{rule_id}",
        "putRule",
        "Create or replace a rule",
        "admin",
        body=Rule,
        answer=Rule,
        errors=(400, 401, 413, 422),
        path_params=("rule_id",),
        handler_name="put_rule",
        tags=("admin",),
    ),
    Operation(
        "DELETE",
        "/v1/admin/rules/{rule_id}",
        "deleteRule",
        "Remove a rule",
        "admin",
        status=204,
        errors=(401, 404),
        path_params=("rule_id",),
        handler_name="delete_rule",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/admin/users",
        "listUsers",
        "Users with admin-managed groups",
        "admin",
        answer=UserList,
        errors=(401,),
        handler_name="list_users",
        tags=("admin",),
    ),
    Operation(
        "PUT",
        "/v1/admin/users/{user_id}",
        "putUserGroups",
        "Set a user's admin-managed groups",
        "admin",
        body=UserGroups,
        answer=UserGroups,
        errors=(400, 401, 413),
        path_params=("user_id",),
        handler_name="put_user",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/admin/devices",
        "listDevices",
        "All devices",
        "admin",
        answer=DeviceList,
        errors=(401,),
        handler_name="list_devices",
        tags=("admin",),
    ),
    Operation(
        "POST",
        "/v1/admin/devices/{device_id}/revoke",
        "revokeDevice",
        "Revoke a device (idempotent)",
        "admin",
        answer=DeviceInfo,
        errors=(401, 404),
        path_params=("device_id",),
        handler_name="revoke",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/admin/audit",
        "listAudit",
        "Audit records (break-glass disconnects), oldest first; the newest `limit` (<=1000)",
        "admin",
        answer=AuditList,
        errors=(400, 401),
        query=(("device_id", False), ("limit", False)),
        handler_name="list_audit",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/admin/decisions",
        "listDecisions",
        "Decision telemetry, newest first; filters: user, device_id, resource, effect; "
        "the newest `limit` (<=1000, default 100)",
        "admin",
        answer=DecisionList,
        errors=(400, 401),
        query=(
            ("user", False),
            ("device_id", False),
            ("resource", False),
            ("effect", False),
            ("limit", False),
        ),
        handler_name="list_decisions",
        tags=("admin",),
    ),
    Operation(
        "POST",
        "/v1/admin/posture-recheck",
        "requestPostureRecheck",
        "Ask one device (or all) to re-check posture",
        "admin",
        body=RecheckRequest,
        status=204,
        errors=(400, 401, 413),
        handler_name="recheck",
        tags=("admin",),
    ),
    Operation(
        "POST",
        "/v1/admin/keys/rotate",
        "rotateSigningKey",
        "Rotate the bundle-signing key; answers the new key set",
        "admin",
        answer=Jwks,
        errors=(401,),
        handler_name="rotate",
        tags=("admin",),
    ),
    Operation(
        "GET",
        "/v1/relay/devices",
        "listRelayDevices",
        "For relays: active devices and their relay keys (ETag; If-None-Match answers 304)",
        "relay",
        answer=RelayDeviceList,
        errors=(401,),
        handler_name="relay_devices",
        tags=("relay",),
    ),
)


class _BodyCap:
    """ASGI middleware refusing bodies over the cap before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    resp = problem_response(
                        413,
                        "Payload too large",
                        f"request body is over {self.limit} bytes",
                        "payload-too-large",
                    )
                    await resp(scope, receive, send)
                    return
        seen = 0

        async def capped() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(f"request body is over {self.limit} bytes")
            return message

        await self.app(scope, capped, send)


class Api:
    """Binds the service, the validator and the dev provider to the operation handlers."""

    def __init__(
        self,
        service: ControllerService,
        validator: TokenValidator,
        *,
        issuer: str,
        client_id: str,
        rate: RateLimiter,
    ) -> None:
        self.service = service
        self.validator = validator
        self.issuer = issuer
        self.client_id = client_id
        self.rate = rate

    # plumbing ---------------------------------------------------------------------
    async def _identity(self, request: Request, auth: Auth) -> Identity | None:
        if auth == "none":
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if auth == "admin":
            if not admin_token_matches(self.service.config, token.strip()):
                raise Unauthorized(
                    "admin credential refused", headers={"WWW-Authenticate": "Bearer"}
                )
            return None
        if auth == "relay":
            # Only the relay token: never a user's token nor the admin token.
            if not self.service.relay_token_ok(token.strip()):
                raise Unauthorized(
                    "relay credential refused", headers={"WWW-Authenticate": "Bearer"}
                )
            return None
        return await self.validator.validate(token.strip())

    def endpoint(self, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        handler: Handler = getattr(self, "h_" + op.handler_name)
        # Decode bodies of this operation's type, strictly (unknown fields refused).
        decoder = msgspec.json.Decoder(op.body) if op.body is not None else None

        async def run(request: Request) -> Response:
            try:
                if op.rate_limited:
                    self._limit(request)
                identity = await self._identity(request, op.auth)
                params = {}
                for name in op.path_params:
                    value = request.path_params[name]
                    pattern = _ID_RE if name in ("device_id", "user_id") else _POLICY_ID_RE
                    if not pattern.match(value):
                        raise NotFound(f"no such {name.removesuffix('_id')} {value[:80]!r}")
                    params[name] = value
                body = None
                if decoder is not None:
                    raw = await request.body()
                    try:
                        body = decoder.decode(raw)
                    except msgspec.DecodeError as exc:
                        raise BadRequest(f"invalid body: {exc}") from exc
                    except (ValueError, RecursionError) as exc:
                        raise BadRequest(f"invalid body: {exc}") from exc
                result = await handler(Ctx(request, body, identity, params))
                if op.auth == "admin" and op.method != "GET":
                    self._audit_admin_api(op, params)
                if isinstance(result, Response):
                    return result
                if op.status == 204:
                    return Response(status_code=204)
                return Response(
                    msgspec.json.encode(result),
                    status_code=op.status,
                    media_type="application/json",
                    headers={"Cache-Control": "no-store"},
                )
            except ApiError as err:
                return problem_response(err.status, err.title, err.detail, err.slug, err.headers)

        return run

    def _audit_admin_api(self, op: Operation, params: dict[str, str]) -> None:
        """Every change made through the admin API (the CLI's token) is in the audit log,
        as the console's changes are: who is the token, not a person."""
        target = " ".join(f"{k}={v}" for k, v in params.items())
        self.service.storage.add_audit(
            AuditEntry(
                record_id=f"{time.time_ns():016x}{secrets.token_hex(4)}",
                at=self.service.now(),
                kind=f"admin:api.{op.op_id}",
                user_id="admin API token",
                device_id=params.get("device_id", ""),
                detail=f"{op.method} {op.path}" + (f" ({target})" if target else ""),
            )
        )

    def _limit(self, request: Request) -> None:
        host = request.client.host if request.client else "unknown"
        wait = self.rate.allow(host)
        if wait is not None:
            raise TooManyRequests(
                "too many requests; slow down", headers={"Retry-After": str(int(wait) + 1)}
            )

    # client handlers -------------------------------------------------------------
    async def h_discovery(self, ctx: Ctx) -> Discovery:
        return Discovery(
            api_version="v1",
            issuer=self.issuer,
            client_id=self.client_id,
            scopes=["openid", "profile", "email", "offline_access"],
            policy_keys=self.service.keys.jwks(),
            policy_roots=self.service.keys.root_jwks(),
            policy_endorsements=self.service.keys.endorsements(),
        )

    async def h_enroll(self, ctx: Ctx) -> Enrollment:
        assert ctx.identity is not None
        return self.service.enroll(ctx.identity, ctx.body)

    async def h_nonce(self, ctx: Ctx) -> NonceResponse:
        assert ctx.identity is not None
        return self.service.issue_nonce(ctx.identity, ctx.params["device_id"])

    async def h_posture(self, ctx: Ctx) -> PostureResult:
        assert ctx.identity is not None
        return self.service.submit_posture(ctx.identity, ctx.params["device_id"], ctx.body.report)

    async def h_decisions(self, ctx: Ctx) -> DecisionAck:
        assert ctx.identity is not None
        return self.service.submit_decisions(ctx.identity, ctx.params["device_id"], ctx.body.batch)

    async def h_bundle(self, ctx: Ctx) -> BundleResponse:
        assert ctx.identity is not None
        return self.service.bundle(ctx.identity, ctx.params["device_id"])

    async def h_relay_key(self, ctx: Ctx) -> None:
        assert ctx.identity is not None
        self.service.set_relay_key(ctx.identity, ctx.params["device_id"], ctx.body.relay_key)

    async def h_break_glass(self, ctx: Ctx) -> AuditRecord:
        assert ctx.identity is not None
        return self.service.report_break_glass(
            ctx.identity, ctx.params["device_id"], ctx.body.reason
        )

    async def h_events(self, ctx: Ctx) -> Response:
        assert ctx.identity is not None
        device_id = ctx.request.query_params.get("device_id", "")
        if not _ID_RE.match(device_id):
            raise BadRequest("query parameter device_id is required")
        self.service.device(ctx.identity, device_id)  # ownership + not revoked
        hub = self.service.events

        async def stream() -> AsyncIterator[bytes]:
            async with hub.subscribe(device_id) as queue:
                yield b": connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    data = msgspec.json.encode(event)
                    yield b"event: " + event.type.encode() + b"\ndata: " + data + b"\n\n"
                    if event.type == "device_revoked" and event.device_id == device_id:
                        return

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # relay handlers ---------------------------------------------------------------
    async def h_relay_devices(self, ctx: Ctx) -> Response:
        body = msgspec.json.encode(RelayDeviceList(devices=self.service.relay_devices()))
        # The body is canonical (sorted ids, compact JSON): equal lists, equal tags.
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        headers = {"ETag": etag, "Cache-Control": "no-store"}
        if _etag_matches(ctx.request.headers.get("if-none-match", ""), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    # admin handlers ---------------------------------------------------------------
    async def h_list_resources(self, ctx: Ctx) -> list[Resource]:
        return self.service.resources()

    async def h_put_resource(self, ctx: Ctx) -> Resource:
        if ctx.body.id != ctx.params["resource_id"]:
            raise BadRequest("the body's id differs from the path's resource_id")
        self.service.put_resource(ctx.body)
        return ctx.body  # type: ignore[no-any-return]

    async def h_delete_resource(self, ctx: Ctx) -> None:
        self.service.delete_resource(ctx.params["resource_id"])

    async def h_list_rules(self, ctx: Ctx) -> list[Rule]:
        return self.service.rules()

    async def h_put_rule(self, ctx: Ctx) -> Rule:
        if ctx.body.id != ctx.params["rule_id"]:
            raise BadRequest("the body's id differs from the path's rule_id")
        self.service.put_rule(ctx.body)
        return ctx.body  # type: ignore[no-any-return]

    async def h_delete_rule(self, ctx: Ctx) -> None:
        self.service.delete_rule(ctx.params["rule_id"])

    async def h_list_users(self, ctx: Ctx) -> UserList:
        return UserList(
            users=[UserGroups(user=u, groups=g) for u, g in self.service.storage.list_users()]
        )

    async def h_put_user(self, ctx: Ctx) -> UserGroups:
        if ctx.body.user != ctx.params["user_id"]:
            raise BadRequest("the body's user differs from the path's user_id")
        self.service.set_user_groups(ctx.body.user, list(ctx.body.groups))
        return ctx.body  # type: ignore[no-any-return]

    async def h_list_devices(self, ctx: Ctx) -> DeviceList:
        return DeviceList(devices=self.service.list_devices())

    async def h_list_audit(self, ctx: Ctx) -> AuditList:
        query = ctx.request.query_params
        device_id = query.get("device_id")
        if device_id is not None and not _ID_RE.match(device_id):
            raise BadRequest("device_id is not a device id")
        raw_limit = query.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise BadRequest("limit must be an integer from 1 to 1000")
        return AuditList(records=self.service.audit(device_id=device_id, limit=int(raw_limit)))

    async def h_list_decisions(self, ctx: Ctx) -> DecisionList:
        query = ctx.request.query_params
        filters: dict[str, str | None] = {}
        for name in ("user", "device_id", "resource", "effect"):
            value = query.get(name)
            if value is not None and (
                not value or len(value) > 256 or any(ord(c) < 32 or ord(c) == 127 for c in value)
            ):
                raise BadRequest(f"{name} must be 1 to 256 printable characters")
            filters[name] = value
        if filters["effect"] not in (None, "allow", "deny"):
            raise BadRequest("effect must be allow or deny")
        raw_limit = query.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise BadRequest("limit must be an integer from 1 to 1000")
        return DecisionList(
            records=self.service.decisions(
                user_id=filters["user"],
                device_id=filters["device_id"],
                resource=filters["resource"],
                effect=filters["effect"],
                limit=int(raw_limit),
            )
        )

    async def h_revoke(self, ctx: Ctx) -> DeviceInfo:
        self.service.revoke(ctx.params["device_id"])
        return next(
            d for d in self.service.list_devices() if d.device_id == ctx.params["device_id"]
        )

    async def h_recheck(self, ctx: Ctx) -> None:
        self.service.events.publish(
            "posture_recheck", ctx.body.device_id, "an administrator asked for a posture re-check"
        )

    async def h_rotate(self, ctx: Ctx) -> Jwks:
        self.service.keys.rotate()
        self.service.events.publish("policy_changed", None, "bundle signing key rotated")
        return self.service.keys.jwks()


def create_app(
    service: ControllerService,
    validator: TokenValidator,
    *,
    issuer: str,
    client_id: str,
    dev_oidc: DevOidcProvider | None = None,
) -> ASGIApp:
    """The controller's ASGI app (and the dev provider under ``/oidc`` when given)."""
    from controller.openapi import openapi_document

    cfg = service.config
    api = Api(
        service,
        validator,
        issuer=issuer,
        client_id=client_id,
        rate=RateLimiter(cfg.sensitive_rate_per_min),
    )
    doc = msgspec.json.encode(openapi_document())

    async def openapi(request: Request) -> Response:
        return Response(doc, media_type="application/json")

    routes: list[BaseRoute] = [
        Route(op.path, api.endpoint(op), methods=[op.method]) for op in OPERATIONS
    ]
    routes.append(Route("/v1/openapi.json", openapi, methods=["GET"]))
    if dev_oidc is not None:
        login_limit = RateLimiter(cfg.sensitive_rate_per_min)
        routes.append(Mount("/oidc", routes=dev_oidc.routes()))
    else:
        login_limit = None
    if cfg.console is not None:
        # The admin console (its own errors, headers and sessions) with its live feed.
        from controller.console.web import ConsoleApp

        console_app = ConsoleApp(service, dev_oidc=dev_oidc)
        try:
            from controller.console.live import LiveFeed
        except ModuleNotFoundError as exc:  # until the live feed lands
            if exc.name != "controller.console.live":
                raise
        else:
            console_app.feed = LiveFeed.for_service(service)
        routes.append(Mount("/console", app=console_app))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problem_response(
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            str(exc.detail),
            "http-" + str(exc.status_code),
        )

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return problem_response(exc.status, exc.title, exc.detail, exc.slug, exc.headers)

    async def crash(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal error", "the controller failed; see its log", "internal"
        )

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, ApiError: api_error, Exception: crash},
    )

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        # Login-related endpoints of the dev provider share the sensitive rate limit.
        if (
            login_limit is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"]
            in ("/oidc/authorize", "/oidc/token", "/oidc/device", "/oidc/device_authorization")
        ):
            client = scope.get("client")
            wait = login_limit.allow(client[0] if client else "unknown")
            if wait is not None:
                resp = problem_response(
                    429,
                    "Too many requests",
                    "too many sign-in attempts",
                    "rate-limited",
                    {"Retry-After": str(int(wait) + 1)},
                )
                await resp(scope, receive, send)
                return
        await app(scope, receive, send)

    return _BodyCap(limited, cfg.max_body_bytes)


_TITLES = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}


def _etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110)."""
    if not header or len(header) > 4096:
        return False
    tags = [t.strip() for t in header.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)
