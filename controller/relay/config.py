"""The relay process's configuration: one JSON file, parsed strictly.

Unknown keys are refused and every value is checked, so a typo is an error naming the key
instead of a silently ignored setting. Relative file paths are taken from the config
file's directory. Raises :class:`ConfigError` (a ``controller.config.ConfigError``).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Final
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from controller.config import ConfigError as _ControllerConfigError
from wg_backends.errors import SpecError
from wg_backends.spec import parse_endpoint

__all__ = ["ConfigError", "RelayProcessConfig", "endpoint_key", "load_config", "read_token"]

#: A relay token file is a secret of a few dozen bytes; anything larger is a mistake.
_MAX_TOKEN_BYTES: Final = 4096
_NAME: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ConfigError(_ControllerConfigError):
    """The relay's config file is missing, not JSON, or has an invalid value."""


class RelayProcessConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The relay's settings (see ``controller/relay/__init__.py`` for the file's shape).

    ``gateways``: the WireGuard gateway endpoints (``host:port``) this relay forwards to;
    a stream naming any other is refused (the relay is never an open UDP proxy).
    ``queue_bytes``: the cap on bytes waiting for the client's TLS side per stream; beyond
    it datagrams from the gateway are dropped and counted.
    """

    name: Annotated[str, Meta(pattern=_NAME)]
    listen: str
    cert_file: Annotated[str, Meta(min_length=1)]
    key_file: Annotated[str, Meta(min_length=1)]
    client_ca_file: Annotated[str, Meta(min_length=1)]
    controller_url: Annotated[str, Meta(min_length=1, max_length=2048)]
    token_file: Annotated[str, Meta(min_length=1)]
    gateways: Annotated[tuple[str, ...], Meta(min_length=1, max_length=256)]
    max_streams: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    queue_bytes: Annotated[int, Meta(ge=4096, le=64 * 1024 * 1024)] = 262_144
    poll_interval_s: Annotated[float, Meta(ge=0.05, le=60.0)] = 0.5

    def listen_address(self) -> tuple[str, int]:
        """``(host, port)`` to bind; port 0 picks a free port (tests)."""
        return _parse_listen(self.listen)

    def gateway_keys(self) -> frozenset[tuple[str, int]]:
        """The served gateways, normalised (see :func:`endpoint_key`)."""
        return frozenset(endpoint_key(g) for g in self.gateways)


def endpoint_key(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of a gateway endpoint in one canonical spelling (IP literals
    compressed, names lower-case without a trailing dot): how a HELLO's gateway is matched
    against the config. Raises ``ValueError``."""
    try:
        host, port = parse_endpoint(endpoint)
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        host = host.lower().rstrip(".")
    return host, port


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port_s = value.rpartition(":")
    if not sep or not port_s.isascii() or not port_s.isdigit() or len(port_s) > 5:
        raise ConfigError(f"listen: {value!r} must be host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"listen: {host!r} must be an IP address (0.0.0.0, ::, 127.0.0.1)"
        ) from None
    port = int(port_s)
    if port > 65535:
        raise ConfigError(f"listen: port {port} outside 0-65535")
    return host, port


def _check(cfg: RelayProcessConfig) -> None:
    cfg.listen_address()
    for gateway in cfg.gateways:
        try:
            endpoint_key(gateway)
        except ValueError as exc:
            raise ConfigError(f"gateways: {gateway!r}: {exc}") from None
    url = urlsplit(cfg.controller_url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise ConfigError(f"controller_url: {cfg.controller_url!r} must be an http(s):// URL")
    if re.search(r"[\x00-\x20\x7f]", cfg.controller_url):
        raise ConfigError("controller_url: contains a space or control character")


def load_config(path: Path) -> RelayProcessConfig:
    """Read and validate the config file; relative paths become relative to its directory.

    Raises :class:`ConfigError` naming the key or file at fault (the token, certificate
    and key files must exist and be readable).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read relay config {path}: {exc}") from exc
    try:
        cfg = msgspec.json.decode(data, type=RelayProcessConfig)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"invalid relay config {path}: {exc}") from exc
    _check(cfg)
    base = path.parent
    files = {}
    for key in ("cert_file", "key_file", "client_ca_file", "token_file"):
        file = Path(getattr(cfg, key))
        if not file.is_absolute():
            file = base / file
        if not file.is_file():
            raise ConfigError(f"{key}: {file} does not exist or is not a file")
        files[key] = str(file)
    return msgspec.structs.replace(cfg, **files)


def read_token(cfg: RelayProcessConfig) -> str:
    """The bearer token for the controller's relay API (the token file, stripped).

    Raises :class:`ConfigError` when the file is unreadable, empty or oversized.
    """
    try:
        raw = Path(cfg.token_file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"token_file: cannot read {cfg.token_file}: {exc}") from exc
    if len(raw) > _MAX_TOKEN_BYTES:
        raise ConfigError(f"token_file: {cfg.token_file} is over {_MAX_TOKEN_BYTES} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"token_file: {cfg.token_file} is not ASCII") from None
    if not token or re.search(r"[\x00-\x20\x7f]", token):
        raise ConfigError(f"token_file: {cfg.token_file} must hold one token (no spaces)")
    return token
