"""Shared by the update tests: keys, manifests, a loopback file server, a recording runner."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wg_backends.runner import CommandResult
from wg_backends.signed.jws import b64url, sign
from wg_backends.signed.update_manifest import TYP

NOW = 1_800_000_000
PAYLOAD = b"MZ\x90\x00 rustronaut installer 0.2.0 " + bytes(range(256)) * 64
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def anchor(key: Ed25519PrivateKey) -> str:
    """The key as an ``update_keys`` entry (base64url of the raw public key)."""
    return b64url(key.public_key().public_bytes_raw())


KEYS = (anchor(KEY),)


def payload(version: str = "0.2.0", **over: Any) -> dict[str, Any]:
    """A manifest payload for ``version`` with a windows and a macos file."""
    file = {"url": "https://updates.example.com/x", "size": len(PAYLOAD), "sha256": sha(PAYLOAD)}
    doc: dict[str, Any] = {
        "v": 1,
        "version": version,
        "issued_at": NOW - 60,
        "expires_at": NOW + 7 * 86400,
        "files": {"windows-x86_64": dict(file), "macos-universal": dict(file)},
    }
    doc.update(over)
    return doc


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def token(doc: Mapping[str, Any], key: Ed25519PrivateKey = KEY, typ: str = TYP) -> str:
    return sign(json.dumps(doc).encode(), key, typ=typ)


def with_url(doc: dict[str, Any], url: str, *, size: int | None = None) -> dict[str, Any]:
    for file in doc["files"].values():
        file["url"] = url
        if size is not None:
            file["size"] = size
    return doc


@dataclass
class FileServer:
    """A loopback HTTP server answering GETs from ``files`` (path -> bytes); a path in
    ``no_length`` is sent without Content-Length (read until close)."""

    files: dict[str, bytes] = field(default_factory=dict)
    no_length: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def file_server() -> Iterator[FileServer]:
    state = FileServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            if self.path not in state.no_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that hangs up early (a refused oversized download) is fine

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class RecordingRunner:
    """Records every command (and what the file it names held at that moment)."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    seen: list[tuple[bytes, int, int]] = field(default_factory=list)  # content, mode, uid
    rc: int = 0

    def __call__(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        import os

        self.calls.append(tuple(argv))
        path = argv[0] if argv[0].endswith(".exe") else argv[2]
        st = os.stat(path)
        with open(path, "rb") as fh:
            self.seen.append((fh.read(), st.st_mode & 0o7777, st.st_uid))
        if check and self.rc != 0:
            from wg_backends.errors import CommandError

            raise CommandError(argv, self.rc, "installer failed")
        return CommandResult(tuple(argv), self.rc, "", "")
