"""The signed update manifest, sans I/O: what a release is, and whether to take it.

A manifest is a JWS compact string (Ed25519, ``typ`` :data:`TYP`, see
:mod:`wg_backends.signed.jws`) signed by one of the organisation's pinned update keys
(``update_keys``: raw Ed25519 public keys, base64url, as policy trust anchors are
written). Its payload::

    {"v": 1, "version": "1.4.0", "issued_at": 1767000000, "expires_at": 1767600000,
     "files": {"windows-x86_64": {"url": "https://…/Rustronaut-1.4.0.exe",
                                  "size": 73400320, "sha256": "<64 hex>"},
               "macos-universal": {…}}}

Both the client (``core.update``: is there something newer?) and the privileged helper
(:mod:`wg_backends.helper.updates`: verify again, download, re-check, install) decide
with the functions here, so they cannot disagree. Checks, in order: signature by a
pinned key; strict schema; issued no later than now (+ :data:`CLOCK_SKEW`), not expired,
valid for at most :data:`MAX_LIFETIME`; the platform's file present, its URL ``https``
(``http`` only to a loopback host), its size 1..:data:`MAX_DOWNLOAD`; then
:func:`check_version`: never below the installed version nor below the highest manifest
version ever seen (the floor), exactly the pinned version when one is managed.

Errors::

    UpdateRefused (code)       every refusal; ``code`` is a stable ``update_*`` string
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, BinaryIO, Final
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from wg_backends.signed.anchors import anchor_keys
from wg_backends.signed.jws import SignatureError, verify

__all__ = [
    "CLOCK_SKEW",
    "MAX_DOWNLOAD",
    "MAX_LIFETIME",
    "MAX_MANIFEST",
    "TYP",
    "Manifest",
    "UpdateFile",
    "UpdateRefused",
    "VerifiedManifest",
    "check_version",
    "file_sha256",
    "install_argv",
    "parse_version",
    "platform_key",
    "verify_manifest",
]

TYP: Final = "rustronaut-update+jws"
MAX_MANIFEST: Final = 32 * 1024
"""Largest manifest token (bytes); it travels in one helper frame."""
MAX_DOWNLOAD: Final = 1024 * 1024 * 1024
"""Largest installer a manifest may announce (1 GiB)."""
MAX_LIFETIME: Final = 90 * 24 * 3600
"""Longest validity of a manifest (seconds): a release channel re-signs at least this often."""
CLOCK_SKEW: Final = 300
"""Seconds a manifest may claim to be issued in the future (clock differences)."""

_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PLATFORM = re.compile(r"(windows|macos|linux)-[a-z0-9_]{1,16}")


class UpdateRefused(Exception):
    """An update refused, with a stable ``code``: ``update_signature``, ``update_malformed``,
    ``update_stale``, ``update_rollback``, ``update_pinned``, ``update_current``,
    ``update_platform``, ``update_disabled``, ``update_size``, ``update_hash``,
    ``update_download``, ``update_install``, ``update_busy``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UpdateFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One platform's installer: where, how large, and its SHA-256 (lowercase hex)."""

    url: Annotated[str, Meta(min_length=1, max_length=2048)]
    size: Annotated[int, Meta(ge=1, le=MAX_DOWNLOAD)]
    sha256: Annotated[str, Meta(min_length=64, max_length=64)]


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The signed payload (see the module docstring)."""

    version: Annotated[str, Meta(max_length=32)]
    issued_at: Annotated[int, Meta(ge=0, le=2**40)]
    expires_at: Annotated[int, Meta(ge=0, le=2**40)]
    files: Annotated[dict[str, UpdateFile], Meta(max_length=16)]
    v: int = 1


@dataclass(frozen=True, slots=True)
class VerifiedManifest:
    """A manifest whose signature, validity window and platform entry were checked."""

    manifest: Manifest
    file: UpdateFile
    platform: str
    signer: str

    @property
    def version(self) -> str:
        return self.manifest.version


def parse_version(text: str) -> tuple[int, int, int]:
    """``"MAJOR.MINOR.PATCH"`` (no leading zeros, no suffix) as a tuple; ``ValueError``."""
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"version {text!r} is not MAJOR.MINOR.PATCH")
    return int(match[1]), int(match[2]), int(match[3])


def platform_key(sys_platform: str, machine: str) -> str:
    """The manifest's key for this computer: ``windows-x86_64``, ``windows-arm64``,
    ``macos-universal`` (macOS packages are universal), ``linux-<arch>``. Pure."""
    arch = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(
        machine.lower(), machine.lower()
    )
    if sys_platform == "win32":
        return f"windows-{arch}"
    if sys_platform == "darwin":
        return "macos-universal"
    return f"linux-{arch}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_file(file: UpdateFile) -> None:
    parts = urlsplit(file.url)
    host = parts.hostname or ""
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        raise UpdateRefused("update_malformed", "the installer URL must be https://")
    if not host or parts.username or parts.password or any(c.isspace() for c in file.url):
        raise UpdateRefused("update_malformed", "the installer URL is not a plain URL")
    if not _SHA256.fullmatch(file.sha256):
        raise UpdateRefused("update_malformed", "the installer hash is not lowercase SHA-256 hex")


def verify_manifest(
    token: str, keys: Sequence[str], *, now: float, platform: str
) -> VerifiedManifest:
    """Verify ``token`` against the pinned update ``keys`` and pick ``platform``'s file.

    Raises :class:`UpdateRefused`: ``update_disabled`` (no key pinned),
    ``update_signature``, ``update_malformed``, ``update_stale`` (expired, not yet valid
    or valid too long), ``update_platform``. Does not look at versions
    (:func:`check_version`). Pure; any thread.
    """
    if not keys:
        raise UpdateRefused("update_disabled", "no update key is configured")
    try:
        trusted = anchor_keys(keys)
    except ValueError as exc:
        raise UpdateRefused("update_disabled", f"an update key is invalid: {exc}") from None
    try:
        doc = verify(token, trusted, typ=TYP, max_size=MAX_MANIFEST)
    except SignatureError as exc:
        raise UpdateRefused("update_signature", f"update manifest refused: {exc}") from None
    try:
        manifest = msgspec.json.decode(doc.payload, type=Manifest)
        parse_version(manifest.version)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError) as exc:
        raise UpdateRefused("update_malformed", f"update manifest malformed: {exc}") from None
    if manifest.v != 1:
        raise UpdateRefused("update_malformed", f"update manifest format {manifest.v} unknown")
    if manifest.issued_at > now + CLOCK_SKEW:
        raise UpdateRefused("update_stale", "update manifest is issued in the future")
    if manifest.expires_at <= now:
        raise UpdateRefused(
            "update_stale", f"update manifest {manifest.version} expired (a stale release)"
        )
    if manifest.expires_at - manifest.issued_at > MAX_LIFETIME:
        raise UpdateRefused("update_stale", "update manifest is valid for too long")
    file = manifest.files.get(platform)
    if file is None or not _PLATFORM.fullmatch(platform):
        raise UpdateRefused("update_platform", f"update {manifest.version} has no {platform} file")
    _check_file(file)
    return VerifiedManifest(manifest=manifest, file=file, platform=platform, signer=doc.kid)


def check_version(version: str, *, installed: str, floor: str | None, pin: str | None) -> None:
    """Whether ``version`` may be installed over ``installed``; returns only if it is newer.

    Raises :class:`UpdateRefused`: ``update_pinned`` (a pin is managed and this is not
    it), ``update_rollback`` (older than the installed version or than ``floor``, the
    highest manifest version ever seen), ``update_current`` (already installed). Pure.
    """
    wanted = parse_version(version)
    if pin and version != pin:
        raise UpdateRefused("update_pinned", f"version {pin} is pinned; {version} not taken")
    if wanted < parse_version(installed):
        raise UpdateRefused(
            "update_rollback", f"version {version} is older than the installed {installed}"
        )
    if floor is not None and wanted < parse_version(floor):
        raise UpdateRefused(
            "update_rollback", f"version {version} is older than version {floor} already seen"
        )
    if wanted == parse_version(installed):
        raise UpdateRefused("update_current", f"version {version} is already installed")


def install_argv(platform: str, path: str) -> tuple[str, ...]:
    """The command that installs ``path`` silently: NSIS ``/S`` on Windows, ``installer
    -pkg … -target /`` on macOS. Linux refused (``update_platform``): apt/dnf repositories
    update Linux. Pure."""
    if platform.startswith("windows-"):
        return (path, "/S")
    if platform.startswith("macos-"):
        return ("/usr/sbin/installer", "-pkg", path, "-target", "/")
    raise UpdateRefused(
        "update_platform", "Linux is updated from the apt or dnf repository, not by the client"
    )


def file_sha256(fh: BinaryIO, limit: int) -> tuple[str, int]:
    """SHA-256 (hex) and size of what the open file ``fh`` holds from its start, reading
    at most ``limit`` + 1 bytes (so an oversized file shows as larger than ``limit``)."""
    digest = hashlib.sha256()
    size = 0
    fh.seek(0)
    while size <= limit:
        chunk = fh.read(min(1024 * 1024, limit + 1 - size))
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
