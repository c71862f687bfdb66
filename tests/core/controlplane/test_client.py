"""The control-plane client against a MockTransport: caps, schemas, problem mapping."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from core.controlplane import (
    AuthenticationError,
    BearerAuth,
    ConflictError,
    ControllerUnreachableError,
    ControlPlaneClient,
    ForbiddenError,
    InvalidAnswerError,
    RateLimitedError,
    RejectedError,
    ServerError,
)
from core.controlplane.client import MAX_ANSWER_BYTES, MAX_EVENT_BYTES

pytestmark = pytest.mark.unit

NONCE = {"nonce": "abc", "expires_at": 100}


def _client(handler: httpx.MockTransport | None = None, **kw: object) -> ControlPlaneClient:
    return ControlPlaneClient("https://ctl.example", transport=handler, **kw)  # type: ignore[arg-type]


def _json(
    status: int,
    body: object,
    ctype: str = "application/json",
    headers: dict[str, str] | None = None,
) -> httpx.MockTransport:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=raw, headers={"content-type": ctype, **(headers or {})}
        )

    return httpx.MockTransport(handle)


async def test_sends_bearer_and_decodes() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=NONCE)

    async with _client(httpx.MockTransport(handle), auth=BearerAuth(lambda: "tok")) as c:
        nonce = await c.posture_nonce("dev_1")
    assert nonce.nonce == "abc"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert seen[0].url.path == "/v1/devices/dev_1/posture/nonce"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, RejectedError),
        (401, AuthenticationError),
        (403, ForbiddenError),
        (409, ConflictError),
        (413, RejectedError),
        (422, RejectedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
async def test_problem_documents_map_to_the_tree(status: int, error: type[Exception]) -> None:
    problem = {"type": "x", "title": "T", "status": status, "detail": "why", "extra": 1}
    async with _client(_json(status, problem, "application/problem+json")) as c:
        with pytest.raises(error, match="why"):
            await c.posture_nonce("dev_1")


async def test_rate_limited_carries_retry_after() -> None:
    async with _client(
        _json(429, {"detail": "slow"}, "application/problem+json", {"retry-after": "7"})
    ) as c:
        with pytest.raises(RateLimitedError) as info:
            await c.posture_nonce("dev_1")
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("transport", "needle"),
    [
        (_json(200, b"{nope"), "invalid answer"),
        (_json(200, {"nonce": "abc"}), "missing required field"),
        (_json(200, {**NONCE, "extra": 1}), "unknown field"),
        (_json(200, {"nonce": 5, "expires_at": 1}), "Expected `str`"),
        (_json(200, NONCE, "text/plain"), "not JSON"),
        (_json(200, b" " * (MAX_ANSWER_BYTES + 1)), "cap"),
        (_json(201, NONCE), "unexpected 201"),
    ],
)
async def test_invalid_answers_are_errors(transport: httpx.MockTransport, needle: str) -> None:
    async with _client(transport) as c:
        with pytest.raises(InvalidAnswerError, match=needle):
            await c.posture_nonce("dev_1")


async def test_unreachable_and_bad_ids() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with _client(httpx.MockTransport(boom)) as c:
        with pytest.raises(ControllerUnreachableError, match="refused"):
            await c.discovery()
        with pytest.raises(ValueError, match="bad identifier"):
            await c.fetch_bundle("../admin")


async def test_event_stream_parses_and_refuses_garbage() -> None:
    good = (
        b': connected\n\nevent: policy_changed\ndata: {"type":"policy_changed","at":1}'
        b'\n\nevent: device_revoked\r\ndata: {"type":"device_revoked","at":2,'
        b'"device_id":"d"}\r\n\r\n'
    )
    async with _client(_json(200, good, "text/event-stream")) as c:
        events = [e async for e in c.events("d")]
    assert [e.type for e in events] == ["policy_changed", "device_revoked"]
    for body in (
        b'data: {"type":"nope","at":1}\n\n',
        b'event: device_revoked\ndata: {"type":"policy_changed","at":1}\n\n',
        b"data: " + b"x" * (MAX_EVENT_BYTES + 10),
    ):
        async with _client(_json(200, body, "text/event-stream")) as c:
            with pytest.raises(InvalidAnswerError):
                _ = [e async for e in c.events("d")]
