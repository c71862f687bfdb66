"""The committed OpenAPI document matches the code; Schemathesis finds no server error."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from controller.config import ControllerConfig, DevOidcConfig, hash_admin_token
from controller.openapi import COMMITTED, openapi_document, render
from controller.testing import build

pytestmark = pytest.mark.integration

ADMIN = secrets.token_urlsafe(24)
BASE = "http://testserver"


def test_committed_document_is_in_sync() -> None:
    assert COMMITTED.read_bytes() == render(), "run: python -m controller.openapi"
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/devices/{device_id}/bundle" in doc["paths"]
    assert "/.well-known/rustronaut" in doc["paths"]


@pytest.fixture(scope="module")
def app_and_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    cfg = ControllerConfig(
        admin_token_sha256=hash_admin_token(ADMIN),
        keys_dir=str(tmp / "keys"),
        database=f"sqlite://{tmp / 'c.db'}",
        public_url=BASE,
        dev_oidc=DevOidcConfig(),
        sensitive_rate_per_min=100_000,
    )
    app, service, dev, _issuer = build(cfg, base_url=BASE)
    assert dev is not None
    from controller.oidc.provider import _User

    user_token = dev._access_token(
        _User("alice", "alice@example.com", "Alice", ("eng",)), "openid", 600, "jti-schemathesis"
    )
    yield app, user_token
    service.storage.close()


def test_no_server_errors(app_and_token: tuple[object, str]) -> None:
    """Every operation, a few generated requests each (bounded), never a 5xx."""
    app, user_token = app_and_token
    api = schemathesis.openapi.from_asgi("/v1/openapi.json", app).exclude(path="/v1/events")
    seen = 0
    current = [""]
    for result in api.get_all_operations():
        operation = result.ok()
        current[0] = ADMIN if operation.path.startswith("/v1/admin") else user_token

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {current[0]}"})
            assert response.status_code < 500, (case.method, case.path, response.text[:500])
            if response.status_code >= 400:
                ctype = response.headers.get("content-type", [""])
                ctype = ctype[0] if isinstance(ctype, list) else ctype
                assert ctype.startswith("application/problem+json"), (case.path, ctype)
                msgspec.json.decode(response.content)

        run()
        seen += 1
    assert seen >= 15
