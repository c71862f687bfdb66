"""Errors the API turns into RFC 9457 problem documents.

Errors::

    ApiError (status, title, detail)     every refusal the API sends
     ├── BadRequest          400  malformed JSON, wrong types, unknown fields
     ├── Unauthorized        401  missing/invalid/expired token, wrong issuer/audience
     ├── Forbidden           403  revoked device, another user's device, not admin
     ├── NotFound            404
     ├── Conflict            409  key already enrolled
     ├── PayloadTooLarge     413
     ├── Unprocessable       422  forged/replayed/stale posture report
     ├── TooManyRequests     429
     └── Unavailable         503  address pool exhausted, issuer unreachable
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from starlette.responses import Response

from core.controlplane.models import Problem

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "problem_response",
]

PROBLEM_BASE = "https://rustronaut.invalid/problems/"


class ApiError(Exception):
    """A refusal with an HTTP status; ``slug`` names the problem type."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    """The request is malformed."""

    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(ApiError):
    """No acceptable credential."""

    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(ApiError):
    """Authenticated but not allowed."""

    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ApiError):
    """No such thing."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(ApiError):
    """Conflicts with existing state."""

    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ApiError):
    """The body is over the cap."""

    status, title, slug = 413, "Payload too large", "payload-too-large"


class Unprocessable(ApiError):
    """Well-formed but refused (e.g. a forged or replayed posture report)."""

    status, title, slug = 422, "Unprocessable", "unprocessable"


class TooManyRequests(ApiError):
    """Rate limit hit."""

    status, title, slug = 429, "Too many requests", "rate-limited"


class Unavailable(ApiError):
    """Temporarily unable to serve."""

    status, title, slug = 503, "Unavailable", "unavailable"


def problem_response(
    status: int, title: str, detail: str, slug: str, headers: dict[str, str] | None = None
) -> Response:
    """A ``application/problem+json`` response."""
    body = msgspec.json.encode(
        Problem(type=PROBLEM_BASE + slug, title=title, status=status, detail=detail[:2000])
    )
    hdrs = {"Cache-Control": "no-store", **(headers or {})}
    return Response(body, status_code=status, media_type="application/problem+json", headers=hdrs)
