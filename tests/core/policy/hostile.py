"""A tiny hostile controller on loopback: serves whatever discovery (or raw answer) the test
sets, over real HTTP, to the real ``ControlPlaneClient``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.wire.endorsement import endorse
from core.wire.policy import PolicyBundle, UserInfo, sign_bundle
from core.wire.signing import jwk_from_public_key, key_id
from wg_backends.spec import PeerSpec, TunnelSpec

GW_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
DEVICE = "dev-hostile"


@dataclass
class Answer:
    """What the server answers next: status, content type and body for every path."""

    status: int = 200
    body: bytes = b"{}"
    ctype: str = "application/json"
    paths: dict[str, tuple[int, bytes]] = field(default_factory=dict)


@contextmanager
def serve(answer: Answer) -> Iterator[str]:
    """Serve ``answer`` (mutable: tests change it between requests) on 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer.paths.get(self.path, (answer.status, answer.body))
            self.send_response(status)
            self.send_header("Content-Type", answer.ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def discovery(
    signing: list[Ed25519PrivateKey],
    *,
    roots: list[Ed25519PrivateKey] = (),  # type: ignore[assignment]
    endorsements: list[str] = (),  # type: ignore[assignment]
) -> bytes:
    """A discovery document listing ``signing`` keys, ``roots`` and ``endorsements``."""
    return msgspec.json.encode(
        {
            "api_version": "v1",
            "issuer": "http://127.0.0.1:1/oidc",
            "client_id": "rustronaut",
            "scopes": ["openid"],
            "policy_keys": {"keys": [jwk_from_public_key(k.public_key()) for k in signing]},
            "policy_roots": [jwk_from_public_key(r.public_key()) for r in roots],
            "policy_endorsements": list(endorsements),
        }
    )


def endorsed(key: Ed25519PrivateKey, root: Ed25519PrivateKey, **kw: Any) -> str:
    now = int(time.time())
    kw.setdefault("not_before", now - 3600)
    kw.setdefault("not_after", now + 86400)
    return endorse(key.public_key(), root, **kw)


def tunnel(*routes: str) -> TunnelSpec:
    peer = PeerSpec(public_key=GW_KEY, endpoint="192.0.2.1:51820", allowed_ips=routes)
    return TunnelSpec(interface="rst0", addresses=("100.64.0.2/32",), peers=(peer,))


def bundle_token(key: Ed25519PrivateKey, version: int, *routes: str, device: str = DEVICE) -> str:
    now = int(time.time())
    b = PolicyBundle(
        version=version,
        device_id=device,
        issued_at=now - 60,
        expires_at=now + 3600,
        user=UserInfo(subject="alice"),
        tunnel=tunnel(*(routes or ("10.20.0.0/16",))),
    )
    return sign_bundle(b, key, key_id(key.public_key()))
