"""The helper's own verification of a signed policy bundle, and the tunnel spec it yields.

Issue 16: the helper obeys the organisation, not the caller. Under managed trust anchors
it brings up only tunnels taken from a policy bundle it verified itself:

1. the JWS (``typ`` ``rustronaut-policy+jws``, Ed25519) verifies with a key the
   anchors trust — an anchor, or a key an anchor (or a root it endorsed) endorsed in one
   of the statements the caller relays (:func:`wg_backends.signed.anchors.trusted_signing_keys`);
2. the payload is at most :data:`MAX_JSON_DEPTH` deep and in canonical JSON *as a
   whole* (no key twice, every number in its shortest form, compact, the encoder's
   escapes: :func:`wg_backends.signed.canonical.check_canonical` over its generic
   decoding), so the helper and the engine cannot read different things in the same
   signed bytes;
3. only the few fields the helper needs are decoded (:class:`_Envelope`: version,
   device id, validity window, the tunnel specs), the specs with ``TunnelSpec``'s full
   validation and in the schema's canonical form; the rest of the bundle is the engine's;
4. the bundle is valid now (``issued_at`` at most ``skew`` ahead, ``expires_at`` not
   reached), names the device the caller expects (if it says), and is not older than the
   rollback floor the helper keeps per device id in its root-owned state directory
   (:class:`HelperFloors`), which also binds a device id to the account that first used
   it: another account's bundle is refused;
5. the profile names one of its specs: ``"tunnel"`` (``bundle.tunnel``) or
   ``"gateway:<n>"`` (``bundle.gateways[n]``, 0-based) — the engine lists them in that
   order (:func:`profile_for` turns its index into the id).

Every refusal is :class:`BundleRefused` (protocol code ``bad_bundle``) with a ``reason``
and a message; nothing is applied and the floor is unchanged. Pure apart from the floor
file; any thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from msgspec import Meta

from wg_backends.errors import WgError
from wg_backends.render import check_private_dir
from wg_backends.signed.anchors import MAX_ENDORSEMENTS, trusted_signing_keys
from wg_backends.signed.canonical import MAX_JSON_DEPTH, CanonicalJsonError, check_canonical
from wg_backends.signed.canonical import check_depth as _check_depth
from wg_backends.signed.jws import SignatureError, UnknownKeyError, verify
from wg_backends.spec import TunnelSpec

__all__ = [
    "BUNDLE_TYP",
    "DEFAULT_SKEW_S",
    "FLOORS_FILE_NAME",
    "MAX_HELPER_BUNDLE",
    "BundleRefused",
    "HelperFloors",
    "VerifiedSpec",
    "describe",
    "parse_profile",
    "profile_for",
    "verified_spec",
]

BUNDLE_TYP: Final = "rustronaut-policy+jws"
"""The JWS ``typ`` of a policy bundle (the same as ``core.wire.policy.BUNDLE_TYP``)."""
MAX_HELPER_BUNDLE: Final = 16 * 1024 * 1024
"""Largest bundle token the helper verifies (a 10,000-rule bundle is about 3 MB)."""
DEFAULT_SKEW_S: Final = 300
"""Clock skew tolerated on ``issued_at``, as the engine tolerates it."""
FLOORS_FILE_NAME: Final = "policy-floors.json"
_MAX_FLOORS = 1024
_UNBOUND = -1  # a floor root set: no account is bound to the device id yet
_MAX_GATEWAYS = 16
_PROFILE = re.compile(r"tunnel|gateway:(0|[1-9][0-9]?)")

Reason = Literal[
    "signature",
    "untrusted_key",
    "format",
    "not_canonical",
    "expired",
    "not_yet_valid",
    "wrong_device",
    "rollback",
    "no_profile",
    "floor",
]


class BundleRefused(WgError, ValueError):
    """A bundle the helper will not take a tunnel from; ``reason`` says which check.

    The server answers it with the protocol's ``bad_bundle`` code and the message.
    """

    title = "The Rustronaut helper refused the policy"
    next_step = (
        "Connect again to fetch fresh policy. If it keeps happening, collect diagnostics "
        "(rustronaut diag) and contact IT."
    )
    #: what the employee's error says (the refusal reaches the engine as HelperRefused)
    code = "helper_refused"
    #: the protocol's error code the server answers with
    helper_code = "bad_bundle"

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason: Reason = reason
        super().__init__(message)


# --- profiles -------------------------------------------------------------------------


def parse_profile(profile: str) -> int | None:
    """``None`` for ``"tunnel"``, ``n`` for ``"gateway:<n>"`` (0-15). ``BundleRefused``
    (``no_profile``) for anything else."""
    if not isinstance(profile, str) or not _PROFILE.fullmatch(profile):
        raise BundleRefused(
            "no_profile", f"profile {profile!r} is not 'tunnel' or 'gateway:<n>' (n 0-15)"
        )
    if profile == "tunnel":
        return None
    index = int(profile.partition(":")[2])
    if index >= _MAX_GATEWAYS:
        raise BundleRefused("no_profile", f"profile {profile!r}: at most {_MAX_GATEWAYS} gateways")
    return index


def profile_for(index: int, *, has_tunnel: bool) -> str:
    """The profile id of the ``index``-th spec in the engine's order (``bundle.tunnel``
    when present, then ``bundle.gateways``)."""
    if index < 0:
        raise ValueError("index must not be negative")
    if has_tunnel:
        return "tunnel" if index == 0 else f"gateway:{index - 1}"
    return f"gateway:{index}"


# --- the few fields the helper decodes ------------------------------------------------

_Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/+-]+$")]
_Timestamp = Annotated[int, Meta(ge=0, le=2**40)]


class _Envelope(msgspec.Struct, frozen=True):
    """The fields of a bundle the helper needs; unknown fields are the engine's to check
    (they are still part of the whole-payload canonical check)."""

    version: Annotated[int, Meta(ge=1, le=2**53)]
    device_id: _Id
    issued_at: _Timestamp
    expires_at: _Timestamp
    tunnel: TunnelSpec | None = None
    gateways: Annotated[tuple[TunnelSpec, ...], Meta(max_length=_MAX_GATEWAYS)] = ()
    schema: Literal[1] = 1


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class VerifiedSpec:
    """A tunnel spec taken from a verified bundle, and what the helper logs about it."""

    spec: TunnelSpec
    """The profile's spec, without a private key (the helper adds the device key)."""
    device_id: str
    version: int
    expires_at: int
    signer: str
    """The kid of the key that signed the bundle."""
    profile: str


def _payload(
    token: str,
    anchors: Mapping[str, Ed25519PublicKey],
    endorsements: Sequence[str],
    now: float,
) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise BundleRefused("format", "the bundle is not a string")
    if not anchors:
        raise BundleRefused("untrusted_key", "no policy trust anchors are configured")
    if not isinstance(endorsements, Sequence) or isinstance(endorsements, str | bytes):
        raise BundleRefused("format", "endorsements is not a list of strings")
    if len(endorsements) > MAX_ENDORSEMENTS:
        raise BundleRefused("format", f"more than {MAX_ENDORSEMENTS} endorsements")
    keys = trusted_signing_keys(anchors, endorsements, now=now)
    try:
        doc = verify(token, keys, typ=BUNDLE_TYP, max_size=MAX_HELPER_BUNDLE)
    except UnknownKeyError as exc:
        raise BundleRefused(
            "untrusted_key",
            f"policy bundle refused: {exc} (not a trust anchor, nor endorsed by one)",
        ) from None
    except SignatureError as exc:
        raise BundleRefused("signature", f"policy bundle signature refused: {exc}") from None
    return doc.kid, doc.payload


def _decode(payload: bytes) -> tuple[dict[str, Any], _Envelope]:
    try:
        _check_depth(payload, MAX_JSON_DEPTH, what="bundle")
        whole = msgspec.json.decode(payload)
    except CanonicalJsonError as exc:
        raise BundleRefused("format", str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleRefused("format", f"bundle is not JSON: {exc}") from None
    if not isinstance(whole, dict):
        raise BundleRefused("format", "bundle is not a JSON object")
    try:
        # The whole payload, not only the fields read here: a key given twice anywhere
        # (or 1.0, 1e2, -0) would let the engine and the helper see different bundles.
        check_canonical(payload, whole, _ENCODER.encode, what="bundle")
    except CanonicalJsonError as exc:
        raise BundleRefused("not_canonical", str(exc)) from None
    try:
        envelope = _ENVELOPE.decode(payload)
    except msgspec.ValidationError as exc:
        raise BundleRefused("format", f"invalid bundle: {exc}") from None
    except msgspec.DecodeError as exc:  # pragma: no cover - decoded generically above
        raise BundleRefused("format", f"bundle is not JSON: {exc}") from None
    return whole, envelope


def _pick(whole: dict[str, Any], envelope: _Envelope, profile: str) -> TunnelSpec:
    index = parse_profile(profile)
    if index is None:
        spec, raw = envelope.tunnel, whole.get("tunnel")
    elif index < len(envelope.gateways):
        spec, raw = envelope.gateways[index], whole["gateways"][index]
    else:
        spec, raw = None, None
    if spec is None:
        raise BundleRefused("no_profile", f"the bundle has no {profile!r} tunnel")
    if spec.private_key is not None:
        raise BundleRefused("format", "a tunnel spec in a bundle must not carry a private key")
    try:
        # In the schema's own form too (field order, explicit fields), like the engine.
        check_canonical(
            _ENCODER.encode(raw), spec, _ENCODER.encode, what=f"the bundle's {profile!r} spec"
        )
    except CanonicalJsonError as exc:
        raise BundleRefused("not_canonical", str(exc)) from None
    return spec


def verified_spec(
    bundle_jws: str,
    profile: str,
    *,
    anchors: Mapping[str, Ed25519PublicKey],
    endorsements: Sequence[str],
    floors: HelperFloors,
    owner: int | str,
    now: float,
    device_id: str | None = None,
    skew: float = DEFAULT_SKEW_S,
) -> VerifiedSpec:
    """The ``profile``'s tunnel spec from ``bundle_jws`` if the helper may use it now.

    ``anchors``: the managed trust anchors by kid (``anchor_keys``); ``endorsements``:
    the statements the caller relays; ``floors``: the helper's rollback floors;
    ``owner``: the caller (uid or SID) the device id is bound to; ``now``: the helper's
    clock; ``device_id``: the device the caller expects (None: any). On success the
    floor is raised to the bundle's version. Raises :class:`BundleRefused`; nothing is
    changed then.
    """
    signer, payload = _payload(bundle_jws, anchors, endorsements, now)
    whole, envelope = _decode(payload)
    if envelope.expires_at <= envelope.issued_at:
        raise BundleRefused("format", "invalid bundle: expires_at is not after issued_at")
    if device_id is not None and envelope.device_id != device_id:
        raise BundleRefused(
            "wrong_device",
            f"policy bundle is for device {envelope.device_id!r}, not {device_id!r}",
        )
    if now >= envelope.expires_at:
        raise BundleRefused(
            "expired",
            f"policy bundle version {envelope.version} expired at {envelope.expires_at} "
            f"(now {int(now)})",
        )
    if envelope.issued_at > now + skew:
        raise BundleRefused(
            "not_yet_valid",
            f"policy bundle is issued at {envelope.issued_at}, "
            f"{int(envelope.issued_at - now)} s in the future",
        )
    spec = _pick(whole, envelope, profile)
    floors.advance(envelope.device_id, envelope.version, owner=owner)
    return VerifiedSpec(
        spec=spec,
        device_id=envelope.device_id,
        version=envelope.version,
        expires_at=envelope.expires_at,
        signer=signer,
        profile=profile,
    )


# --- the rollback floors --------------------------------------------------------------


class _Floor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: Annotated[int, Meta(ge=1, le=2**53)]
    owner: int | str
    at: int


class _Floors(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    floors: dict[str, _Floor] = {}
    v: int = 1


class HelperFloors:
    """The highest bundle version accepted per device id, and which account it belongs
    to, in ``<state_dir>/policy-floors.json`` (0600 in the helper's 0700 directory: no
    user can lower it).

    A device id is bound to the account (uid or SID) whose bundle first set its floor;
    another account presenting a bundle for it is refused (``wrong_device``). Root (uid
    0) may use any device's bundle and binds none. A file
    that is unreadable, not a regular file, or not the helper's own is never replaced
    silently: every ``advance`` is refused (``floor``) until an administrator looks.
    Read-modify-write under a thread lock and ``flock``, written to a unique temporary
    file, fsynced and renamed. At most 1,024 device ids (the least recently raised go).
    """

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / FLOORS_FILE_NAME
        self._lock = threading.Lock()

    def version(self, device_id: str) -> int | None:
        """The floor of ``device_id`` (None: none yet). Raises ``BundleRefused``."""
        with self._locked():
            floor = self._load().floors.get(device_id)
        return None if floor is None else floor.version

    def advance(self, device_id: str, version: int, *, owner: int | str) -> None:
        """Accept ``version`` for ``device_id`` on behalf of ``owner`` and raise the floor.

        Refused (``BundleRefused``): ``rollback`` below the floor, ``wrong_device`` when
        the device id is another account's (root, uid 0, may use any), ``floor`` when the
        file cannot be read or written. The same version again is accepted (re-apply).
        """
        with self._locked():
            state = self._load()
            floor = state.floors.get(device_id)
            if floor is not None:
                if floor.owner not in (owner, _UNBOUND) and owner != 0:
                    raise BundleRefused(
                        "wrong_device",
                        f"device {device_id!r} belongs to another account on this computer",
                    )
                if version < floor.version:
                    raise BundleRefused(
                        "rollback",
                        f"policy bundle version {version} for device {device_id!r} is older "
                        f"than version {floor.version} already used",
                    )
                if version == floor.version:
                    return
            # Root may use any device's bundle and binds none: the first account does.
            keep = floor.owner if floor is not None else _UNBOUND
            if keep == _UNBOUND and owner != 0:
                keep = owner
            floors = dict(state.floors)
            floors[device_id] = _Floor(version=version, owner=keep, at=int(time.time()))
            if len(floors) > _MAX_FLOORS:
                oldest = sorted(floors, key=lambda d: floors[d].at)[: len(floors) - _MAX_FLOORS]
                for gone in oldest:
                    if gone != device_id:
                        del floors[gone]
            self._save(_Floors(floors=floors))

    # -- internals ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            try:
                check_private_dir(self.dir)
                fd = os.open(
                    self.dir / ".floors.lock",
                    os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                    0o600,
                )
            except OSError as exc:
                raise BundleRefused("floor", f"rollback floors unavailable: {exc}") from None
            try:
                try:
                    import fcntl
                except ImportError:  # pragma: no cover - Windows: the thread lock only
                    yield
                else:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    yield
            finally:
                os.close(fd)

    def _load(self) -> _Floors:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return _Floors()
        except OSError as exc:
            raise BundleRefused("floor", f"rollback floors unreadable: {exc}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or (
                hasattr(os, "geteuid") and st.st_uid != os.geteuid()
            ):
                raise BundleRefused("floor", f"rollback floors {self.path} are not the helper's")
            data = fh.read(4 * 1024 * 1024)
        try:
            return msgspec.json.decode(data, type=_Floors)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise BundleRefused(
                "floor", f"rollback floors {self.path} are unreadable ({exc}); not replaced"
            ) from None

    def _save(self, state: _Floors) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".floors-", dir=self.dir)  # 0600, unique
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(msgspec.json.encode(state))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise BundleRefused("floor", f"rollback floors not written: {exc}") from None


def describe(verified: VerifiedSpec) -> str:
    """One log line about a verified bundle (no key material)."""
    return json.dumps(
        {
            "device_id": verified.device_id,
            "version": verified.version,
            "signer": verified.signer,
            "profile": verified.profile,
            "interface": verified.spec.interface,
        },
        sort_keys=True,
    )
