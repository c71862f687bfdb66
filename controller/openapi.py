"""The OpenAPI 3.1 document, generated from ``controller.app.OPERATIONS`` and the models.

Schemas come from ``msgspec.json.schema_components`` of the very structs the server
decodes and the client validates with; ``controller/openapi.json`` is the committed copy
(a test keeps it equal to this output; ``python -m controller.openapi`` rewrites it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from core.controlplane.models import Problem

__all__ = ["COMMITTED", "openapi_document", "render"]

COMMITTED = Path(__file__).with_name("openapi.json")
_REF = "#/components/schemas/{name}"


def openapi_document() -> dict[str, Any]:
    """The whole document as plain data. Pure; deterministic."""
    from controller.app import OPERATIONS

    types: list[Any] = [Problem]
    for op in OPERATIONS:
        for t in (op.body, op.answer):
            if t is not None and t not in types:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    by_type = dict(zip(types, schemas, strict=True))
    problem_ref = by_type[Problem]
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {
            "operationId": op.op_id,
            "summary": op.summary,
            "tags": list(op.tags),
        }
        if op.auth == "user":
            item["security"] = [{"userBearer": []}]
        elif op.auth == "admin":
            item["security"] = [{"adminBearer": []}]
        elif op.auth == "relay":
            item["security"] = [{"relayBearer": []}]
        else:
            item["security"] = []
        params = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 128},
            }
            for n in op.path_params
        ]
        params += [
            {
                "name": n,
                "in": "query",
                "required": req,
                "schema": {"type": "string", "minLength": 1, "maxLength": 64},
            }
            for n, req in op.query
        ]
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[op.body]}},
            }
        responses: dict[str, Any] = {}
        if op.status == 204:
            responses["204"] = {"description": "Done"}
        elif op.media == "text/event-stream":
            responses["200"] = {
                "description": "An SSE stream of `Event` objects (event: <type>, data: <json>)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        else:
            responses[str(op.status)] = {
                "description": "Success",
                "content": {"application/json": {"schema": by_type[op.answer]}},
            }
        problem = {
            "description": "Problem",
            "content": {"application/problem+json": {"schema": problem_ref}},
        }
        for code in sorted({*op.errors, 405, 500} - {op.status}):
            responses[str(code)] = problem
        if op.auth != "none":
            responses.setdefault("401", problem)
        item["responses"] = responses
        paths.setdefault(op.path, {})[op.method.lower()] = item
    paths["/v1/openapi.json"] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rustronaut control plane",
            "version": "1.0.0",
            "description": "Discovery, enrollment, posture, signed policy bundles, "
            "events and administration. Errors are RFC 9457 problems.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "userBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token of a trusted OIDC issuer",
                },
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token written by `init`",
                },
                "relayBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The relays' token (the file named by `relay_token_file`)",
                },
            },
        },
    }


def render() -> bytes:
    """The document as the committed file's bytes (formatted JSON, trailing newline)."""
    return msgspec.json.format(msgspec.json.encode(openapi_document()), indent=2) + b"\n"


if __name__ == "__main__":
    COMMITTED.write_bytes(render())
    sys.stdout.write(f"wrote {COMMITTED}\n")
