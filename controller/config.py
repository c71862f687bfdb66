"""The controller's configuration: one frozen struct, read from a JSON file.

``rustronaut-controller init`` writes it (with fresh keys and an admin token); ``serve``
reads it. Parsing is strict (unknown keys refused, values checked) so a typo is an error
naming the key rather than a silently ignored setting.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from wg_backends.errors import SpecError
from wg_backends.spec import RelaySpec, parse_endpoint

__all__ = [
    "ConfigError",
    "ConsoleConfig",
    "ControllerConfig",
    "DemoUser",
    "DevOidcConfig",
    "GatewayConfig",
    "IssuerConfig",
    "RelayConfig",
    "admin_token_matches",
    "hash_admin_token",
    "load_config",
    "new_admin_token",
    "read_relay_token",
    "relay_token_matches",
    "save_config",
]


class ConfigError(ValueError):
    """The configuration file is missing, not JSON, or has an invalid value."""


class _Cfg(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base: strict, frozen."""


class DemoUser(_Cfg, frozen=True):
    """A user of the development OIDC provider (demo/tests only)."""

    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=128)]
    email: Annotated[str, Meta(max_length=254)]
    name: str = ""
    groups: tuple[str, ...] = ()


DEFAULT_USERS = (
    DemoUser(
        username="alice",
        password="alice-password",  # noqa: S106 - demo credential, documented
        email="alice@example.com",
        name="Alice Example",
        groups=("engineering",),
    ),
    DemoUser(
        username="bob",
        password="bob-password",  # noqa: S106 - demo credential, documented
        email="bob@example.com",
        name="Bob Example",
        groups=("sales",),
    ),
    # The demo's IT administrator: may sign in to the admin console (/console).
    DemoUser(
        username="it-admin",
        password="it-admin-password",  # noqa: S106 - demo credential, documented
        email="it-admin@example.com",
        name="IT Admin",
        groups=("rustronaut-admins",),
    ),
)


class DevOidcConfig(_Cfg, frozen=True):
    """The built-in development OIDC provider, mounted at ``<public_url>/oidc``."""

    enabled: bool = True
    client_id: str = "rustronaut-desktop"
    users: tuple[DemoUser, ...] = DEFAULT_USERS
    id_token_alg: Literal["RS256", "EdDSA"] = "RS256"  # noqa: S105
    access_token_ttl_s: Annotated[int, Meta(ge=10, le=86400)] = 600
    refresh_token_ttl_s: Annotated[int, Meta(ge=60, le=30 * 86400)] = 86400
    device_code_ttl_s: Annotated[int, Meta(ge=30, le=3600)] = 600
    device_poll_interval_s: Annotated[int, Meta(ge=0, le=60)] = 1


class IssuerConfig(_Cfg, frozen=True):
    """An external OIDC issuer whose access (or ID) tokens the controller accepts."""

    issuer: Annotated[str, Meta(pattern=r"^https?://")]
    audiences: Annotated[tuple[str, ...], Meta(min_length=1)]
    jwks_uri: str | None = None
    groups_claim: str = "groups"


class GatewayConfig(_Cfg, frozen=True):
    """The gateway peer devices tunnel to; ``interface`` set = drive it with ``wg set``."""

    public_key: str
    endpoint: str
    interface: str | None = None
    #: The gateway's own tunnel address inside the pool, never given to a device.
    address: str = "10.77.0.1/24"
    #: The clients' keepalive towards this gateway (in their tunnel spec). A client reads
    #: a keepalive of at most 10 s as the gateway's promise to keep alive as often
    #: (``peer_keepalive_s``): 2k + 1 s without a received byte is then a silent gateway.
    keepalive_s: int | None = 5
    #: The gateway's keepalive towards each device peer (0: off), so a client sees
    #: traffic from a live gateway even on an idle tunnel.
    peer_keepalive_s: Annotated[int, Meta(ge=0, le=65535)] = 5
    #: Install the per-device filter (nftables) on the gateway; off only where another
    #: firewall enforces the grants.
    filter: bool = True

    def __post_init__(self) -> None:
        promised = self.keepalive_s is not None and 0 < self.keepalive_s <= 10
        if promised and not 0 < self.peer_keepalive_s <= (self.keepalive_s or 0):
            # Clients would call an idle, healthy gateway silent and fail over.
            raise ValueError(
                f"gateway {self.endpoint}: keepalive_s {self.keepalive_s} tells clients the "
                f"gateway keeps alive as often, but peer_keepalive_s is "
                f"{self.peer_keepalive_s}: set peer_keepalive_s to 1-{self.keepalive_s}"
            )


class RelayConfig(_Cfg, frozen=True):
    """An mTLS relay that carries devices' WireGuard over TLS where UDP is blocked
    (issue 21). Listed, as a ``RelaySpec``, in the signed tunnel spec of every gateway it
    serves (``gateways``: those gateways' endpoints; empty = every gateway).

    ``name``/``endpoint``/``server_name``/``spki`` are checked at load exactly as a client
    checks them in a bundle (:class:`wg_backends.spec.RelaySpec`), so a bad endpoint or
    pin fails when the controller starts, not when a device fetches its bundle.
    """

    name: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    endpoint: str
    server_name: str | None = None
    spki: tuple[str, ...] = ()
    gateways: Annotated[tuple[str, ...], Meta(max_length=16)] = ()

    def __post_init__(self) -> None:
        try:
            self.spec()
            for gw in self.gateways:
                parse_endpoint(gw)
        except SpecError as exc:
            raise ValueError(f"relay {self.name}: {exc}") from None

    def spec(self) -> RelaySpec:
        """The relay as the signed tunnel spec lists it. Raises ``SpecError``."""
        return RelaySpec(
            name=self.name, endpoint=self.endpoint, server_name=self.server_name, spki=self.spki
        )

    def serves(self, gateway_endpoint: str) -> bool:
        """Whether this relay forwards to the gateway at ``gateway_endpoint``."""
        if not self.gateways:
            return True
        want = _endpoint_key(gateway_endpoint)
        return any(_endpoint_key(gw) == want for gw in self.gateways)


def _endpoint_key(endpoint: str) -> tuple[str, int] | str:
    """An endpoint compared by meaning (host case, IPv6 spelling), else as written."""
    try:
        host, port = parse_endpoint(endpoint)
    except SpecError:
        return endpoint
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = host.rstrip(".").lower()
    return host, port


class ConsoleConfig(_Cfg, frozen=True):
    """The admin console under ``<public_url>/console``: an OIDC relying party for admins.

    ``issuer`` empty = the built-in dev provider (``dev_oidc``), which then registers
    ``client_id`` as a confidential client with a secret made at start. For another
    issuer, ``client_secret_file`` (preferred: the config file stays secret-free) or
    ``client_secret`` is required, and the provider must allow the redirect URI
    ``<public_url>/console/callback``.
    """

    issuer: str = ""
    client_id: Annotated[str, Meta(min_length=1, max_length=256)] = "rustronaut-console"
    client_secret: str = ""
    client_secret_file: str | None = None
    #: Signing in needs one of these groups in the ID token (or userinfo) ``groups_claim``.
    admin_groups: Annotated[tuple[str, ...], Meta(min_length=1)] = ("rustronaut-admins",)
    groups_claim: str = "groups"
    #: The session ends this long after the admin's last request.
    idle_timeout_s: Annotated[int, Meta(ge=60, le=86400)] = 1800
    #: The session ends this long after sign-in, however active.
    max_lifetime_s: Annotated[int, Meta(ge=300, le=7 * 86400)] = 8 * 3600
    #: Sign-in starts and callbacks allowed per client address per minute.
    signin_rate_per_min: Annotated[int, Meta(ge=1, le=100_000)] = 30


def _console_origin_ok(url: str) -> bool:
    """Secure cookies need a secure context: https, or a loopback host over http."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


class ControllerConfig(_Cfg, frozen=True):
    """Everything ``serve`` needs. Paths are absolute or relative to the config file."""

    admin_token_sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    keys_dir: str
    database: str = "sqlite:///controller.db"
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8443
    #: The URL clients reach this controller at; empty = ``http://host:port``.
    public_url: str = ""
    pool: str = "10.77.0.0/24"
    api_audience: str = "rustronaut-api"
    #: The desktop app's OIDC client id (announced in discovery).
    client_id: str = "rustronaut-desktop"
    issuers: tuple[IssuerConfig, ...] = ()
    dev_oidc: DevOidcConfig | None = None
    gateway: GatewayConfig | None = None
    #: More gateways, announced after ``gateway`` as failover choices (the client picks
    #: the healthiest). Interface names must differ: each has its own peers.
    gateways: Annotated[tuple[GatewayConfig, ...], Meta(max_length=15)] = ()
    bundle_ttl_s: Annotated[int, Meta(ge=60, le=7 * 86400)] = 3600
    nonce_ttl_s: Annotated[int, Meta(ge=5, le=3600)] = 120
    posture_max_age_s: Annotated[int, Meta(ge=5, le=86400)] = 300
    max_body_bytes: Annotated[int, Meta(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    #: Enrollment and login requests allowed per client address per minute.
    sensitive_rate_per_min: Annotated[int, Meta(ge=1, le=100_000)] = 30
    #: Decision-telemetry batches accepted per device per minute (bursting up to that).
    telemetry_batches_per_min: Annotated[int, Meta(ge=1, le=100_000)] = 30
    #: How long after signing a decision batch is still accepted (``iat`` window).
    telemetry_max_age_s: Annotated[int, Meta(ge=5, le=86400)] = 600
    #: Decision rows kept (all devices); older rows are deleted as new ones arrive.
    telemetry_max_rows: Annotated[int, Meta(ge=1000, le=1_000_000_000)] = 5_000_000
    tunnel_interface: str = "rustronaut0"
    tunnel_dns: tuple[str, ...] = ()
    #: Split-DNS suffixes put into every tunnel spec with ``tunnel_dns`` (names under
    #: them resolve through the tunnel). None: derived from the resources' host names
    #: (``wiki.corp.example`` → ``corp.example``); ``[]``: no split DNS.
    tunnel_dns_suffixes: tuple[str, ...] | None = None
    tunnel_mtu: int | None = None
    #: The admin console (None: not served).
    console: ConsoleConfig | None = None
    #: mTLS relays for networks that drop UDP (issue 21), at most 8, names unique.
    relays: Annotated[tuple[RelayConfig, ...], Meta(max_length=8)] = ()
    #: The file holding the bearer token relays present to ``GET /v1/relay/devices``
    #: (required with ``relays``; at least 32 characters; not group/world-readable).
    relay_token_file: str | None = None

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_network(self.pool, strict=True)
        except ValueError as exc:
            raise ValueError(f"pool: {exc}") from None
        for server in self.tunnel_dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ValueError(f"tunnel_dns: {server!r} is not an IP address") from None
        if self.tunnel_dns_suffixes is not None:
            from wg_backends.spec import validate_dns_suffix

            for suffix in self.tunnel_dns_suffixes:
                try:
                    validate_dns_suffix(suffix)
                except SpecError as exc:
                    raise ValueError(f"tunnel_{exc}") from None
            if len(set(self.tunnel_dns_suffixes)) != len(self.tunnel_dns_suffixes):
                raise ValueError("tunnel_dns_suffixes: the same suffix appears twice")
            if self.tunnel_dns_suffixes and not self.tunnel_dns:
                raise ValueError("tunnel_dns_suffixes: split DNS needs tunnel_dns servers")
        names = [g.interface for g in self.all_gateways if g.interface]
        if len(names) != len(set(names)):
            raise ValueError("gateways: two gateways name the same interface")
        self._check_relays()
        if self.console is not None:
            if not _console_origin_ok(self.effective_public_url):
                # The session cookie is Secure (``__Host-``): a browser would never send
                # it back over plain http to a non-loopback host, so sign-in could not work.
                raise ValueError(
                    f"console: the console needs public_url to be https:// (or a loopback "
                    f"http:// address), not {self.effective_public_url!r}"
                )
            if not self.console.issuer and (self.dev_oidc is None or not self.dev_oidc.enabled):
                raise ValueError("console: set console.issuer or enable dev_oidc")
            if (
                self.console.issuer
                and not self.console.client_secret
                and not self.console.client_secret_file
            ):
                raise ValueError(
                    "console: an external issuer needs client_secret_file (or client_secret)"
                )

    def _check_relays(self) -> None:
        relay_names = [r.name for r in self.relays]
        if len(relay_names) != len(set(relay_names)):
            dup = sorted({n for n in relay_names if relay_names.count(n) > 1})
            raise ValueError(f"relays: two relays are named {dup[0]!r}")
        known = {_endpoint_key(g.endpoint) for g in self.all_gateways}
        for relay in self.relays:
            for gw in relay.gateways:
                if _endpoint_key(gw) not in known:
                    raise ValueError(
                        f"relays: relay {relay.name} serves gateway {gw!r}, which is not the "
                        "endpoint of a configured gateway (gateway/gateways)"
                    )
        if self.relays and not self.relay_token_file:
            raise ValueError(
                "relay_token_file: relays are configured but no relay token file is named "
                "(the relays' bearer token for /v1/relay/devices)"
            )

    @property
    def effective_public_url(self) -> str:
        """``public_url``, or ``http://host:port`` when it is empty (no trailing slash)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def all_gateways(self) -> tuple[GatewayConfig, ...]:
        """``gateway`` (when set) then ``gateways``, in the order clients try them."""
        return ((self.gateway,) if self.gateway is not None else ()) + self.gateways

    @property
    def pool_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """``pool`` parsed."""
        return ipaddress.ip_network(self.pool, strict=True)


def new_admin_token() -> str:
    """A fresh admin token (256 bits, URL-safe) that never starts with "-": a token that
    did would be read as an option by ``rustronaut-controller --token TOKEN``."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def hash_admin_token(token: str) -> str:
    """The hex SHA-256 the config stores instead of the admin token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def admin_token_matches(config: ControllerConfig, presented: str) -> bool:
    """Constant-time check of a presented admin bearer token."""
    return hmac.compare_digest(hash_admin_token(presented), config.admin_token_sha256)


#: The shortest relay token accepted (``init`` writes 43 characters: 256 bits).
MIN_RELAY_TOKEN_CHARS = 32


def read_relay_token(config: ControllerConfig) -> str | None:
    """The relays' bearer token from ``relay_token_file`` (None when no file is named).

    Raises ``ConfigError`` when the file cannot be read, is readable or writable by its
    group or others (the token lets anyone list every device's relay key), holds fewer than
    :data:`MIN_RELAY_TOKEN_CHARS` characters or anything but visible ASCII, or is the admin
    token (a relay must never hold the admin credential).
    """
    if config.relay_token_file is None:
        return None
    path = Path(config.relay_token_file)
    try:
        st = path.stat()
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"relay_token_file: cannot read {path}: {exc}") from exc
    if st.st_mode & 0o077:
        raise ConfigError(
            f"relay_token_file: {path} is accessible to its group or others "
            f"(mode {st.st_mode & 0o777:o}); chmod 600 it"
        )
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"relay_token_file: {path} is not ASCII text") from None
    if len(token) < MIN_RELAY_TOKEN_CHARS:
        raise ConfigError(
            f"relay_token_file: the token in {path} has {len(token)} characters, "
            f"fewer than {MIN_RELAY_TOKEN_CHARS}"
        )
    if not all(33 <= ord(c) < 127 for c in token):
        raise ConfigError(f"relay_token_file: the token in {path} has spaces or control characters")
    if hmac.compare_digest(hash_admin_token(token), config.admin_token_sha256):
        raise ConfigError("relay_token_file: the relay token must not be the admin token")
    return token


def relay_token_matches(expected: str | None, presented: str) -> bool:
    """Constant-time check of a relay's bearer token; always False without a token."""
    if expected is None:
        return False
    # Compare digests: equal lengths, so the time tells nothing about the token's length.
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def load_config(path: Path) -> ControllerConfig:
    """Read and validate the config file; raises ``ConfigError`` naming the problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        cfg = msgspec.json.decode(data, type=ControllerConfig)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"invalid config {path}: {exc}") from exc
    base = path.parent
    keys_dir = Path(cfg.keys_dir)
    if not keys_dir.is_absolute():
        cfg = msgspec.structs.replace(cfg, keys_dir=str(base / keys_dir))
    if cfg.database.startswith("sqlite:///") and not cfg.database.startswith("sqlite:////"):
        rel = cfg.database.removeprefix("sqlite:///")
        cfg = msgspec.structs.replace(cfg, database=f"sqlite://{base / rel}")
    if cfg.relay_token_file is not None and not Path(cfg.relay_token_file).is_absolute():
        cfg = msgspec.structs.replace(cfg, relay_token_file=str(base / cfg.relay_token_file))
    read_relay_token(cfg)  # a missing, short or unsafe token file fails here, at load
    return cfg


def save_config(path: Path, config: ControllerConfig) -> None:
    """Write the config (mode 0600: it names the keys directory and the token hash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
    tmp.chmod(0o600)
    tmp.replace(path)
