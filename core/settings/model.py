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

from core.i18n import QT_TRANSLATE_NOOP, translate
from core.settings.errors import SettingValueError

__all__ = [
    "SPECS",
    "Kind",
    "SettingSpec",
    "Settings",
    "check_controller_url",
    "check_spki_pin",
    "check_update_version",
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

    ``title``, ``description`` and ``category`` are English (the MDM templates and the
    admin guide are generated from them); :meth:`label`, :meth:`help` and
    :meth:`category_label` give them in the installed language (``core.i18n``). The
    ``key`` is never translated.
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

    def label(self) -> str:
        """The setting's title in the installed language ("Local proxy port")."""
        return translate("core.settings.model", self.title)

    def help(self) -> str:
        """The setting's description in the installed language."""
        return translate("core.settings.model", self.description)

    def category_label(self) -> str:
        """The setting's category in the installed language ("Connection")."""
        return translate("core.settings.model", self.category)

    def expected(self) -> str:
        """A human phrase for what a valid value looks like (used in error messages), in
        the installed language; the choices of an enum are values, never translated."""
        if self.kind is Kind.BOOL:
            return translate("core.settings.model", "true or false")
        if self.kind is Kind.INT:
            return translate(
                "core.settings.model", "a whole number from {minimum} to {maximum}"
            ).format(minimum=self.minimum, maximum=self.maximum)
        if self.kind is Kind.ENUM:
            return translate("core.settings.model", "one of {choices}").format(
                choices=", ".join(self.choices)
            )
        what = translate(
            "core.settings.model", _CHECKS[self.check][0] if self.check is not None else _TEXT
        )
        if self.kind is Kind.STR_LIST:
            return translate("core.settings.model", "a list of strings, each {what}").format(
                what=what
            )
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
            raise self._bad(
                value,
                translate("core.settings.model", "more than {count} items").format(
                    count=self.max_items
                ),
            )
        items = []
        for index, item in enumerate(value, start=1):
            where = translate("core.settings.model", "item {index}").format(index=index)
            if not isinstance(item, str):
                raise self._bad(item, where)
            if item == "":
                raise self._bad(
                    item, translate("core.settings.model", "{where} is empty").format(where=where)
                )
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
            too_long = translate("core.settings.model", "longer than {count} characters")
            raise self._bad(value, prefix + too_long.format(count=self.max_length))
        if "\x00" in value:
            raise self._bad(
                value, prefix + translate("core.settings.model", "contains a NUL character")
            )
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
        raise SettingValueError(translate("core.settings.model", "not an absolute http(s) URL"))
    if any(ch.isspace() for ch in value):
        raise SettingValueError(translate("core.settings.model", "URL contains whitespace"))
    try:
        _ = parts.port
    except ValueError:
        raise SettingValueError(translate("core.settings.model", "invalid port")) from None


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
        raise SettingValueError(
            translate("core.settings.model", "http:// is allowed only for loopback; use https://")
        )
    if parts.username or parts.password:
        raise SettingValueError(
            translate("core.settings.model", "credentials in the URL are not allowed")
        )


def check_spki_pin(value: str) -> None:
    """Accept standard base64 of exactly 32 bytes (a SHA-256 of a SubjectPublicKeyInfo)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingValueError(translate("core.settings.model", "not valid base64")) from None
    if len(raw) != 32:
        raise SettingValueError(
            translate("core.settings.model", "decodes to {count} bytes, not 32").format(
                count=len(raw)
            )
        )


def check_policy_anchor(value: str) -> None:
    """Accept unpadded base64url of exactly 32 bytes in canonical form (an Ed25519 public
    key, the ``x`` of its JWK), as ``core.policy.trust.parse_anchor`` reads it."""
    if len(value) != 43 or not value.isascii():
        raise SettingValueError(
            translate(
                "core.settings.model", "must be 43 characters of base64url (a 32-byte Ed25519 key)"
            )
        )
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/") + "=", validate=True)
    except (binascii.Error, ValueError):
        raise SettingValueError(
            translate("core.settings.model", "not valid base64url (A-Z a-z 0-9 - _)")
        ) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise SettingValueError(
            translate(
                "core.settings.model", "not in canonical base64url (its last character is off)"
            )
        )


def check_update_version(value: str) -> None:
    """Accept a release version ``MAJOR.MINOR.PATCH`` (digits, no leading zeros), as
    ``wg_backends.signed.update_manifest.parse_version`` reads it."""
    parts = value.split(".")
    if len(parts) != 3 or not all(
        p.isascii() and p.isdigit() and len(p) <= 9 and (p == "0" or p[0] != "0") for p in parts
    ):
        raise SettingValueError(
            translate("core.settings.model", "not a version like 1.4.0 (MAJOR.MINOR.PATCH)")
        )


#: What any text setting accepts, for messages (translated where it is used).
_TEXT = QT_TRANSLATE_NOOP("core.settings.model", "text")

# Each checker's phrase for messages (English, translated where used), and the same rule
# as a JSON Schema regex (so the generated schema agrees with the loader) with its "format".
_LOOPBACK_HOST = r"(localhost|127(\.[0-9]{1,3}){3}|\[::1\])"
_CHECKS: Mapping[Checker, tuple[str, str, str | None]] = {
    check_controller_url: (
        QT_TRANSLATE_NOOP(
            "core.settings.model", "an https:// URL (http:// only for a loopback address)"
        ),
        rf"^(|https://[^\s/@]+(/\S*)?|http://{_LOOPBACK_HOST}(:[0-9]{{1,5}})?(/\S*)?)$",
        "uri",
    ),
    check_url: (
        QT_TRANSLATE_NOOP("core.settings.model", "an http(s):// URL"),
        r"^(|https?://[^\s/]+(/\S*)?)$",
        "uri",
    ),
    check_spki_pin: (
        QT_TRANSLATE_NOOP("core.settings.model", "base64 of a 32-byte SHA-256 SPKI hash"),
        r"^[A-Za-z0-9+/]{43}=$",
        None,
    ),
    check_policy_anchor: (
        QT_TRANSLATE_NOOP("core.settings.model", "base64url of a 32-byte Ed25519 public key"),
        r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
        None,
    ),
    check_update_version: (
        QT_TRANSLATE_NOOP("core.settings.model", "a version like 1.4.0"),
        r"^(|(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8}))$",
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
TelemetryLevel = Literal["off", "counts", "full"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Effective values of every setting, typed. Immutable; build with ``replace``."""

    controller_url: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "Controller URL"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Address of the Rustronaut controller the client enrolls with and fetches its "
            "signed policy from. Must be https:// (http:// is accepted only for a loopback "
            "address, for local testing). Empty means not configured yet.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        check=check_controller_url,
        example="https://controller.example.com",
    )
    oidc_issuer: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "OpenID Connect issuer"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Issuer URL of the company's OpenID Connect provider used for sign-in "
            "(discovery is read from <issuer>/.well-known/openid-configuration).",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Sign-in"),
        check=check_url,
        example="https://login.example.com/realms/corp",
    )
    oidc_client_id: str = spec(
        "rustronaut-desktop",
        QT_TRANSLATE_NOOP("core.settings.model", "OpenID Connect client id"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Client id of the desktop app registered at the OpenID Connect provider "
            "(a public, native client using PKCE).",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Sign-in"),
        example="rustronaut-desktop",
    )
    end_provider_session: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Sign out at the identity provider too"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "On sign-out, also end the session at the identity provider: its logout page "
            "opens in the browser (when the provider offers one), so the next sign-in asks "
            "for the password again. The tokens are revoked either way.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Sign-in"),
        example=True,
        advanced=False,
    )
    auto_connect: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Connect automatically"),
        QT_TRANSLATE_NOOP(
            "core.settings.model", "Connect as soon as the user is signed in and the app starts."
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        example=True,
        advanced=False,
    )
    always_on: bool = spec(
        False,
        QT_TRANSLATE_NOOP("core.settings.model", "Always-on"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Keep the connection up at all times; disconnecting then needs a break-glass "
            "reason (if allowed) and is reported to the controller.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        example=False,
    )
    allow_break_glass: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Allow break-glass disconnect"),
        QT_TRANSLATE_NOOP(
            "core.settings.model", "Under always-on, let the user disconnect after giving a reason."
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
    )
    preferred_backend: Backend = spec(  # noqa: RUF009 (spec() returns a field)
        "auto",
        QT_TRANSLATE_NOOP("core.settings.model", "Preferred WireGuard backend"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Which WireGuard backend the helper uses; 'auto' picks the best available one "
            "on this machine.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
    )
    proxy_port: int = spec(
        9080,
        QT_TRANSLATE_NOOP("core.settings.model", "Local proxy port"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Loopback TCP port of the local proxy; the same port serves SOCKS5 and HTTP CONNECT.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        minimum=1024,
        maximum=65535,
        example=9080,
    )
    transparent: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Transparent mode"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Decide every app's connections to company resources without proxy settings: the "
            "helper redirects them to the local decider (Linux; elsewhere apps use the proxy "
            "port or the PAC file). Only the decider may send into the tunnel (kill switch). "
            "Off: only apps pointed at the proxy reach company resources.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        example=True,
    )
    transparent_port: int = spec(
        9082,
        QT_TRANSLATE_NOOP("core.settings.model", "Transparent mode port"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Loopback TCP port where the helper's redirect hands apps' connections to the "
            "decider (never a proxy: a direct connection to it is refused).",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        minimum=1024,
        maximum=65535,
        example=9082,
    )
    tls_pin_sha256: tuple[str, ...] = spec(
        (),
        QT_TRANSLATE_NOOP("core.settings.model", "Controller TLS pins"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Optional SHA-256 pins (base64) of the controller's TLS SubjectPublicKeyInfo; "
            "when set, a connection is accepted only if one certificate in the chain "
            "matches one pin, in addition to normal verification.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        check=check_spki_pin,
    )
    policy_trust_anchors: tuple[str, ...] = spec(
        (),
        QT_TRANSLATE_NOOP("core.settings.model", "Policy trust anchors"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "The organisation's policy root keys: Ed25519 public keys (base64url of the raw "
            "32 bytes, the 'x' of the key's JWK; the controller prints it with 'rustronaut-"
            "controller keys root'). Only policy signed by one of them, or by a key one of "
            "them endorsed, is used; the controller's discovery answer can never add one. "
            "Empty: the first root seen is pinned with a warning (development only).",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Connection"),
        check=check_policy_anchor,
    )
    auto_update: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Automatic updates"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Install new releases on Windows and macOS by themselves: the client fetches the "
            "signed update manifest from the update URL and the privileged helper verifies "
            "it with the update keys, downloads the installer into its own admin-only "
            "directory, checks it again and runs it. Older and expired releases are always "
            "refused. The helper obeys only the managed value (MDM, Group Policy). Linux "
            "is updated from the apt or dnf repository instead.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Updates"),
        example=True,
    )
    update_url: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "Update manifest URL"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Address of the signed update manifest (https://; http:// only for a loopback "
            "address). With a pinned version, point it at that version's manifest. Empty: "
            "no automatic updates.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Updates"),
        check=check_controller_url,
        example="https://updates.example.com/rustronaut/stable.jws",
    )
    update_keys: tuple[str, ...] = spec(
        (),
        QT_TRANSLATE_NOOP("core.settings.model", "Update signing keys"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Ed25519 public keys (base64url of the raw 32 bytes) allowed to sign update "
            "manifests. The privileged helper reads only the managed value. Empty: no "
            "automatic updates.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Updates"),
        check=check_policy_anchor,
    )
    update_pin_version: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "Pinned version"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Install only this release (MAJOR.MINOR.PATCH); any other version is refused. "
            "A pin never downgrades: a version older than the installed one is refused. "
            "Empty: the newest signed release.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Updates"),
        check=check_update_version,
        example="1.4.0",
    )
    log_level: LogLevel = spec(  # noqa: RUF009 (spec() returns a field)
        "info",
        QT_TRANSLATE_NOOP("core.settings.model", "Log level"),
        QT_TRANSLATE_NOOP(
            "core.settings.model", "Least severe level written to the client's log files."
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Support"),
        example="info",
    )
    support_url: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "Support URL"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Link shown to users in error messages and the About dialog for help.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Support"),
        check=check_url,
        example="https://help.example.com/vpn",
    )
    organization_name: str = spec(
        "",
        QT_TRANSLATE_NOOP("core.settings.model", "Organization name"),
        QT_TRANSLATE_NOOP("core.settings.model", "Name of the organization shown in the app."),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Support"),
        example="Example Corp",
    )
    telemetry_level: TelemetryLevel = spec(  # noqa: RUF009 (spec() returns a field)
        "counts",
        QT_TRANSLATE_NOOP("core.settings.model", "Decision reports to IT"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "What the client tells the organization's controller about the access decisions "
            "it makes: off (nothing), counts (per minute, how many connections to each "
            "resource were allowed or denied; no apps, no destinations) or full (each "
            "decision: time, app, destination, rule, reason and risk). Sent in batches "
            "signed with the device key; kept on disk while offline.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Privacy"),
        example="counts",
    )
    telemetry_hash_app: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Hide app paths in decision reports"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "At the full level, send each app's path as a SHA-256 hash salted with the "
            "controller URL instead of the path itself: IT can recognize a known app by "
            "hashing its path the same way, but never sees the employee's own paths.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Privacy"),
        example=True,
    )
    posture_interval_minutes: int = spec(
        15,
        QT_TRANSLATE_NOOP("core.settings.model", "Posture check interval (minutes)"),
        QT_TRANSLATE_NOOP(
            "core.settings.model", "How often the full device posture is collected and reported."
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Posture"),
        minimum=1,
        maximum=1440,
    )
    posture_watch_seconds: int = spec(
        5,
        QT_TRANSLATE_NOOP("core.settings.model", "Posture watch interval (seconds)"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "How often quick posture facts (firewall, screen lock, required processes) are "
            "re-checked between full reports.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Posture"),
        minimum=1,
        maximum=300,
    )
    posture_required_processes: tuple[str, ...] = spec(
        (),
        QT_TRANSLATE_NOOP("core.settings.model", "Required processes"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Process names that must be running (e.g. an EDR agent); reported as posture "
            "facts for the policy.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Posture"),
    )
    posture_required_files: tuple[str, ...] = spec(
        (),
        QT_TRANSLATE_NOOP("core.settings.model", "Required files"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Absolute paths that must exist (e.g. a management agent's marker file); "
            "reported as posture facts for the policy.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Posture"),
    )
    autostart: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Start at login"),
        QT_TRANSLATE_NOOP("core.settings.model", "Start the tray app when the user logs in."),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Application"),
        advanced=False,
    )
    notifications: bool = spec(
        True,
        QT_TRANSLATE_NOOP("core.settings.model", "Notifications"),
        QT_TRANSLATE_NOOP(
            "core.settings.model",
            "Show desktop notifications for connection changes and blocked access.",
        ),
        category=QT_TRANSLATE_NOOP("core.settings.model", "Application"),
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
