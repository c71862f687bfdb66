"""The settings model: every key, its type, default, limits and description.

``Settings`` (a frozen dataclass) is the one typed source of truth: each field carries a
:class:`SettingSpec` in its metadata, and everything else — validation, the user file,
the MDM readers, the JSON Schema, the ADMX/ADML and ``.mobileconfig`` templates and the
admin guide's table — is derived from it. To add a key, add a field here (with a
description) and regenerate the templates (``python scripts/gen_templates.py``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import ipaddress
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from core.settings.errors import SettingValueError

__all__ = [
    "SPECS",
    "Kind",
    "SettingSpec",
    "Settings",
    "check_controller_url",
    "check_spki_pin",
    "check_url",
    "spec",
]


class Kind(enum.Enum):
    """The shape of a setting's value (drives parsing and every template)."""

    BOOL = "bool"
    INT = "int"
    STR = "str"
    ENUM = "enum"  # a string from a fixed list of choices
    STR_LIST = "str_list"  # an ordered list of strings (a tuple in the model)


Checker = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """Everything known about one key. Built from a ``Settings`` field; immutable.

    ``check`` validates each string (or each list item) and raises
    :class:`SettingValueError`; ``pattern`` is the same rule as a JSON Schema regex so
    the generated schema agrees with the loader. ``advanced`` is False only for the few
    keys an employee is expected to change (shown first in the settings window).
    """

    key: str
    kind: Kind
    default: Any
    title: str
    description: str
    category: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    check: Checker | None = None
    pattern: str | None = None
    fmt: str | None = None  # JSON Schema "format" (documentation only)
    example: Any = None  # value used in the MDM example files; None = not in examples
    max_length: int = 2048
    max_items: int = 64
    #: for IT and support, not something an employee should need to touch: the settings
    #: window keeps it under "Advanced" (and hides it when IT manages it)
    advanced: bool = True

    def expected(self) -> str:
        """A human phrase for what a valid value looks like (used in error messages)."""
        if self.kind is Kind.BOOL:
            return "true or false"
        if self.kind is Kind.INT:
            return f"a whole number from {self.minimum} to {self.maximum}"
        if self.kind is Kind.ENUM:
            return "one of " + ", ".join(self.choices)
        what = _CHECKS[self.check][0] if self.check is not None else "text"
        if self.kind is Kind.STR_LIST:
            return f"a list of strings, each {what}"
        return what

    def validate(self, value: object) -> Any:
        """Return ``value`` in the model's type (lists become tuples) or raise.

        Strict about JSON-level types: ``1`` is not a boolean and ``true`` is not a
        number. Raises :class:`SettingValueError` naming the key and what was expected.
        Pure; safe from any thread.
        """
        bad = SettingValueError(
            f"{self.key}: expected {self.expected()}, got {describe(value)}", key=self.key
        )
        if self.kind is Kind.BOOL:
            if isinstance(value, bool):
                return value
            raise bad
        if self.kind is Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            assert self.minimum is not None
            assert self.maximum is not None
            if not self.minimum <= value <= self.maximum:
                raise bad
            return value
        if self.kind is Kind.ENUM:
            if isinstance(value, str) and value in self.choices:
                return value
            raise bad
        if self.kind is Kind.STR:
            return self._check_text(value, bad)
        # STR_LIST: all items valid or the whole key is refused (never half-applied).
        if not isinstance(value, list | tuple):
            raise bad
        if len(value) > self.max_items:
            raise self._bad(value, f"more than {self.max_items} items")
        items = []
        for index, item in enumerate(value, start=1):
            where = f"item {index}"
            if not isinstance(item, str):
                raise self._bad(item, where)
            if item == "":
                raise self._bad(item, f"{where} is empty")
            items.append(self._check_text(item, bad, where))
        return tuple(items)

    def _bad(self, value: object, reason: str = "") -> SettingValueError:
        detail = f" ({reason})" if reason else ""
        return SettingValueError(
            f"{self.key}: expected {self.expected()}, got {describe(value)}{detail}",
            key=self.key,
        )

    def _check_text(self, value: object, bad: SettingValueError, where: str = "") -> str:
        prefix = f"{where}: " if where else ""
        if not isinstance(value, str):
            raise bad
        if len(value) > self.max_length:
            raise self._bad(value, f"{prefix}longer than {self.max_length} characters")
        if "\x00" in value:
            raise self._bad(value, f"{prefix}contains a NUL character")
        if self.check is not None and value != "":
            try:
                self.check(value)
            except SettingValueError as exc:
                raise self._bad(value, f"{prefix}{exc}") from None
        return value

    def parse_text(self, text: str) -> Any:
        """Parse a value typed by a person (CLI) and validate it; raises like ``validate``.

        Booleans accept true/false, yes/no, on/off, 1/0; lists accept a JSON array or
        comma-separated items (an empty string is the empty list).
        """
        raw: object = text
        if self.kind is Kind.BOOL:
            lowered = text.strip().lower()
            truthy = {"true", "yes", "on", "1"}
            falsy = {"false", "no", "off", "0"}
            raw = True if lowered in truthy else False if lowered in falsy else text
        elif self.kind is Kind.INT:
            try:
                raw = int(text.strip(), 10)
            except ValueError:
                raw = text
        elif self.kind is Kind.STR_LIST:
            stripped = text.strip()
            if stripped.startswith("["):
                try:
                    raw = json.loads(stripped)
                except json.JSONDecodeError:
                    raw = text
            else:
                raw = [item.strip() for item in stripped.split(",") if item.strip()]
        return self.validate(raw)

    def to_json(self, value: Any) -> Any:
        """The value as plain JSON data (tuples become lists)."""
        return list(value) if isinstance(value, tuple) else value


def describe(value: object) -> str:
    """A short, safe description of a bad value for messages (type and truncated repr)."""
    kind = {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "list",
        tuple: "list",
        dict: "object",
        type(None): "null",
        bytes: "binary data",
    }.get(type(value), type(value).__name__)
    shown = json.dumps(value) if isinstance(value, str | bool | int | float) else None
    if shown is not None and len(shown) > 60:
        shown = shown[:57] + "…"
    return f"{kind} {shown}" if shown is not None else kind


def check_url(value: str) -> None:
    """Accept an absolute ``http``/``https`` URL with a host; raise otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingValueError("not an absolute http(s) URL")
    if any(ch.isspace() for ch in value):
        raise SettingValueError("URL contains whitespace")
    try:
        _ = parts.port
    except ValueError:
        raise SettingValueError("invalid port") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_controller_url(value: str) -> None:
    """Accept an ``https`` URL, or ``http`` only towards a loopback host (local tests)."""
    check_url(value)
    parts = urlsplit(value)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise SettingValueError("http:// is allowed only for loopback; use https://")
    if parts.username or parts.password:
        raise SettingValueError("credentials in the URL are not allowed")


def check_spki_pin(value: str) -> None:
    """Accept standard base64 of exactly 32 bytes (a SHA-256 of a SubjectPublicKeyInfo)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingValueError("not valid base64") from None
    if len(raw) != 32:
        raise SettingValueError(f"decodes to {len(raw)} bytes, not 32")


def check_policy_anchor(value: str) -> None:
    """Accept unpadded base64url of exactly 32 bytes in canonical form (an Ed25519 public
    key, the ``x`` of its JWK), as ``core.policy.trust.parse_anchor`` reads it."""
    if len(value) != 43 or not value.isascii():
        raise SettingValueError("must be 43 characters of base64url (a 32-byte Ed25519 key)")
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=", validate=True)
    except (binascii.Error, ValueError):
        raise SettingValueError("not valid base64url (A-Z a-z 0-9 - _)") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise SettingValueError("not in canonical base64url (its last character is off)")


# Each checker's phrase for messages, and the same rule as a JSON Schema regex (so the
# generated schema agrees with the loader) with its "format".
_LOOPBACK_HOST = r"(localhost|127(\.[0-9]{1,3}){3}|\[::1\])"
_CHECKS: Mapping[Checker, tuple[str, str, str | None]] = {
    check_controller_url: (
        "an https:// URL (http:// only for a loopback address)",
        rf"^(|https://[^\s/@]+(/\S*)?|http://{_LOOPBACK_HOST}(:[0-9]{{1,5}})?(/\S*)?)$",
        "uri",
    ),
    check_url: ("an http(s):// URL", r"^(|https?://[^\s/]+(/\S*)?)$", "uri"),
    check_spki_pin: ("base64 of a 32-byte SHA-256 SPKI hash", r"^[A-Za-z0-9+/]{43}=$", None),
    check_policy_anchor: (
        "base64url of a 32-byte Ed25519 public key",
        r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
        None,
    ),
}


def spec(
    default: Any,
    title: str,
    description: str,
    *,
    category: str,
    minimum: int | None = None,
    maximum: int | None = None,
    check: Checker | None = None,
    example: Any = None,
    advanced: bool = True,
) -> Any:
    """Declare a ``Settings`` field with its metadata (kind and choices come from the type).

    ``advanced=False`` marks one of the few keys an employee is expected to change; every
    other key is for IT and support. Returns a ``dataclasses.field``; typed ``Any`` so it
    fits any annotation.
    """
    meta = {
        "title": title,
        "description": description,
        "category": category,
        "minimum": minimum,
        "maximum": maximum,
        "check": check,
        "example": example,
        "advanced": advanced,
    }
    return field(default=default, metadata=meta)


Backend = Literal["auto", "wg-quick", "networkmanager", "wireguard-windows"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Effective values of every setting, typed. Immutable; build with ``replace``."""

    controller_url: str = spec(
        "",
        "Controller URL",
        "Address of the Rustronaut controller the client enrolls with and fetches its "
        "signed policy from. Must be https:// (http:// is accepted only for a loopback "
        "address, for local testing). Empty means not configured yet.",
        category="Connection",
        check=check_controller_url,
        example="https://controller.example.com",
    )
    oidc_issuer: str = spec(
        "",
        "OpenID Connect issuer",
        "Issuer URL of the company's OpenID Connect provider used for sign-in "
        "(discovery is read from <issuer>/.well-known/openid-configuration).",
        category="Sign-in",
        check=check_url,
        example="https://login.example.com/realms/corp",
    )
    oidc_client_id: str = spec(
        "rustronaut-desktop",
        "OpenID Connect client id",
        "Client id of the desktop app registered at the OpenID Connect provider "
        "(a public, native client using PKCE).",
        category="Sign-in",
        example="rustronaut-desktop",
    )
    end_provider_session: bool = spec(
        True,
        "Sign out at the identity provider too",
        "On sign-out, also end the session at the identity provider: its logout page "
        "opens in the browser (when the provider offers one), so the next sign-in asks "
        "for the password again. The tokens are revoked either way.",
        category="Sign-in",
        example=True,
        advanced=False,
    )
    auto_connect: bool = spec(
        True,
        "Connect automatically",
        "Connect as soon as the user is signed in and the app starts.",
        category="Connection",
        example=True,
        advanced=False,
    )
    always_on: bool = spec(
        False,
        "Always-on",
        "Keep the connection up at all times; disconnecting then needs a break-glass "
        "reason (if allowed) and is reported to the controller.",
        category="Connection",
        example=False,
    )
    allow_break_glass: bool = spec(
        True,
        "Allow break-glass disconnect",
        "Under always-on, let the user disconnect after giving a reason.",
        category="Connection",
    )
    preferred_backend: Backend = spec(  # noqa: RUF009 (spec() returns a field)
        "auto",
        "Preferred WireGuard backend",
        "Which WireGuard backend the helper uses; 'auto' picks the best available one "
        "on this machine.",
        category="Connection",
    )
    proxy_port: int = spec(
        9080,
        "Local proxy port",
        "Loopback TCP port of the local proxy; the same port serves SOCKS5 and HTTP CONNECT.",
        category="Connection",
        minimum=1024,
        maximum=65535,
        example=9080,
    )
    transparent: bool = spec(
        True,
        "Transparent mode",
        "Decide every app's connections to company resources without proxy settings: the "
        "helper redirects them to the local decider (Linux; elsewhere apps use the proxy "
        "port or the PAC file). Only the decider may send into the tunnel (kill switch). "
        "Off: only apps pointed at the proxy reach company resources.",
        category="Connection",
        example=True,
    )
    transparent_port: int = spec(
        9082,
        "Transparent mode port",
        "Loopback TCP port where the helper's redirect hands apps' connections to the "
        "decider (never a proxy: a direct connection to it is refused).",
        category="Connection",
        minimum=1024,
        maximum=65535,
        example=9082,
    )
    tls_pin_sha256: tuple[str, ...] = spec(
        (),
        "Controller TLS pins",
        "Optional SHA-256 pins (base64) of the controller's TLS SubjectPublicKeyInfo; "
        "when set, a connection is accepted only if one certificate in the chain "
        "matches one pin, in addition to normal verification.",
        category="Connection",
        check=check_spki_pin,
    )
    policy_trust_anchors: tuple[str, ...] = spec(
        (),
        "Policy trust anchors",
        "The organisation's policy root keys: Ed25519 public keys (base64url of the raw "
        "32 bytes, the 'x' of the key's JWK; the controller prints it with 'rustronaut-"
        "controller keys root'). Only policy signed by one of them, or by a key one of "
        "them endorsed, is used; the controller's discovery answer can never add one. "
        "Empty: the first root seen is pinned with a warning (development only).",
        category="Connection",
        check=check_policy_anchor,
    )
    log_level: LogLevel = spec(  # noqa: RUF009 (spec() returns a field)
        "info",
        "Log level",
        "Least severe level written to the client's log files.",
        category="Support",
        example="info",
    )
    support_url: str = spec(
        "",
        "Support URL",
        "Link shown to users in error messages and the About dialog for help.",
        category="Support",
        check=check_url,
        example="https://help.example.com/vpn",
    )
    organization_name: str = spec(
        "",
        "Organization name",
        "Name of the organization shown in the app.",
        category="Support",
        example="Example Corp",
    )
    posture_interval_minutes: int = spec(
        15,
        "Posture check interval (minutes)",
        "How often the full device posture is collected and reported.",
        category="Posture",
        minimum=1,
        maximum=1440,
    )
    posture_watch_seconds: int = spec(
        5,
        "Posture watch interval (seconds)",
        "How often quick posture facts (firewall, screen lock, required processes) are "
        "re-checked between full reports.",
        category="Posture",
        minimum=1,
        maximum=300,
    )
    posture_required_processes: tuple[str, ...] = spec(
        (),
        "Required processes",
        "Process names that must be running (e.g. an EDR agent); reported as posture "
        "facts for the policy.",
        category="Posture",
    )
    posture_required_files: tuple[str, ...] = spec(
        (),
        "Required files",
        "Absolute paths that must exist (e.g. a management agent's marker file); "
        "reported as posture facts for the policy.",
        category="Posture",
    )
    autostart: bool = spec(
        True,
        "Start at login",
        "Start the tray app when the user logs in.",
        category="Application",
        advanced=False,
    )
    notifications: bool = spec(
        True,
        "Notifications",
        "Show desktop notifications for connection changes and blocked access.",
        category="Application",
        advanced=False,
    )


def _kind_of(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    if annotation is bool:
        return Kind.BOOL, ()
    if annotation is int:
        return Kind.INT, ()
    if annotation is str:
        return Kind.STR, ()
    if typing.get_origin(annotation) is Literal:
        return Kind.ENUM, tuple(typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (str, ...):
        return Kind.STR_LIST, ()
    raise TypeError(f"unsupported settings type {annotation!r}")


def _build_specs() -> dict[str, SettingSpec]:
    hints = typing.get_type_hints(Settings)
    out: dict[str, SettingSpec] = {}
    for f in dataclasses.fields(Settings):
        kind, choices = _kind_of(hints[f.name])
        meta = f.metadata
        check: Checker | None = meta["check"]
        pattern, fmt = (_CHECKS[check][1], _CHECKS[check][2]) if check else (None, None)
        out[f.name] = SettingSpec(
            key=f.name,
            kind=kind,
            default=f.default,
            title=meta["title"],
            description=meta["description"],
            category=meta["category"],
            minimum=meta["minimum"],
            maximum=meta["maximum"],
            choices=choices,
            check=check,
            pattern=pattern,
            fmt=fmt,
            example=meta["example"],
            advanced=meta["advanced"],
        )
    return out


SPECS: Mapping[str, SettingSpec] = _build_specs()
"""Every key's spec, in declaration order (the order the UI and templates use)."""
