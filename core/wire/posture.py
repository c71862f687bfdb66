"""Posture facts and the signed posture report: one definition for client and controller.

A **fact** is one thing the client knows (or could not find out) about the device, under a
stable dotted name (``disk.encrypted``, ``os.version``, ``process.falcon-sensor.running``).
Its ``status`` says whether it could be determined: an ``unknown`` fact has no value and a
``reason`` — unknown is never false, and policy treats it as "requirement not met / not
proven". The names, value kinds and units are listed in ``FACTS`` (plus the two families
``process.<name>.running`` and ``file.<path>.present`` that IT configures).

A **report** carries the device id, the controller's nonce (freshness), the time it was
issued and the facts. It travels as a JWS compact string signed with the device's Ed25519
key (``core.wire.signing``) with ``typ`` ``rustronaut-posture+jws``; the controller checks
it with ``verify_report``. The policy engine sees facts as ``posture.<name>`` keys through
``facts_for_policy`` (known facts only: an unknown fact is absent, never ``False``).

Times are Unix epoch seconds (float, UTC).

Errors::

    PostureReportError              a posture report was refused (ValueError)
     ├── ReportMalformedError       not a valid report document (schema, invariants)
     ├── ReportTooLargeError        the token is over the size cap
     ├── ReportSignatureError       the JWS is malformed, of another type, or does not verify
     ├── ReportStaleError           issued too long ago, or in the future beyond clock skew
     ├── ReportDeviceMismatchError  signed for another device
     └── ReportNonceMismatchError   does not carry the nonce the controller handed out

``Fact`` and ``PostureReport`` validate themselves on construction and on decoding
(``msgspec.ValidationError`` when decoding, ``ValueError``/``TypeError`` when built in code).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from core.i18n import QT_TRANSLATE_NOOP, translate
from core.wire import signing
from core.wire.canonical import CanonicalJsonError, check_canonical, check_depth

__all__ = [
    "CLOCK_SKEW_S",
    "FACTS",
    "MAX_FACTS",
    "MAX_REPORT_SIZE",
    "POSTURE_TYP",
    "Fact",
    "FactSpec",
    "FactStatus",
    "FactValue",
    "FactWords",
    "PostureReport",
    "PostureReportError",
    "ReportDeviceMismatchError",
    "ReportMalformedError",
    "ReportNonceMismatchError",
    "ReportSignatureError",
    "ReportStaleError",
    "ReportTooLargeError",
    "decode_report",
    "encode_report",
    "fact_spec",
    "fact_words",
    "facts_for_policy",
    "file_fact",
    "process_fact",
    "sign_report",
    "verify_report",
]

POSTURE_TYP: Final = "rustronaut-posture+jws"
#: Default cap on a signed report's size (characters of the JWS compact string).
MAX_REPORT_SIZE: Final = 256 * 1024
#: Most facts one report may carry (IT-configured process/file checks included).
MAX_FACTS: Final = 512
#: How far in the future ``issued_at`` may be (device clocks drift a little).
CLOCK_SKEW_S: Final = 60.0

_MAX_NAME = 300
_MAX_STR = 4096
_MAX_LIST = 256
_MAX_REASON = 500
_MAX_ID = 256

#: One value of a fact: a flag, a count/duration, a string, or a list of strings.
FactValue = bool | int | str | tuple[str, ...]
Kind = Literal["bool", "int", "str", "list"]


class FactStatus(StrEnum):
    """Whether the fact could be determined."""

    KNOWN = "known"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FactSpec:
    """What a fact name means: the kind of its value, its unit and a one-line description."""

    name: str
    kind: Kind
    description: str
    unit: str = ""


def _spec(name: str, kind: Kind, description: str, unit: str = "") -> tuple[str, FactSpec]:
    return name, FactSpec(name, kind, description, unit)


#: Every fixed fact name, its kind and unit. Policy authors name these as ``posture.<name>``.
FACTS: Final[Mapping[str, FactSpec]] = dict(
    [
        _spec("os.name", "str", "OS family: linux, windows or macos"),
        _spec("os.distro", "str", "distribution/product id (debian, ubuntu; Windows edition)"),
        _spec("os.version", "str", "OS version, dotted (12, 10.0.22631, 14.4.1)"),
        _spec("os.build", "str", "OS build (22631.3296, 23E224; Linux: kernel build string)"),
        _spec("os.kernel", "str", "kernel release (uname -r; Darwin version; NT build)"),
        _spec("os.arch", "str", "machine architecture, normalised (x86_64, arm64)"),
        _spec("device.hostname", "str", "host name"),
        _spec("device.serial", "str", "hardware serial number where readable"),
        _spec("client.version", "str", "version of the Rustronaut client"),
        _spec("disk.encrypted", "bool", "the system volume is encrypted (LUKS/BitLocker/FV)"),
        _spec("firewall.enabled", "bool", "a host firewall is on and filtering inbound"),
        _spec("screen_lock.enabled", "bool", "an idle screen lock with password is configured"),
        _spec("screen_lock.timeout_s", "int", "idle time before the screen locks", "s"),
        _spec("updates.auto", "bool", "automatic OS (security) updates are on"),
        _spec("secure_boot.enabled", "bool", "the firmware booted with Secure Boot on"),
        _spec("av.running", "bool", "an antivirus/EDR product is present and running"),
        _spec("av.products", "list", "names of the antivirus/EDR products found running"),
        _spec("mdm.enrolled", "bool", "the device is enrolled in an MDM"),
        _spec("domain.joined", "bool", "the device is joined to a (AD/Entra) domain"),
    ]
)

#: Facts the client states about itself when it reports (not collected from the OS).
CLIENT_FACTS: Final[Mapping[str, FactSpec]] = dict(
    [
        _spec(
            "client.managed_rejected",
            "str",
            "why the organization's managed settings were rejected ('' when accepted)",
        ),
    ]
)

_PROCESS_RE = re.compile(r"^process\.([^\x00-\x1f\x7f]{1,255})\.running$")
_FILE_RE = re.compile(r"^file\.([^\x00-\x1f\x7f]{1,255})\.present$")


def process_fact(process_name: str) -> str:
    """The fact name of the IT-configured check "a process named ``process_name`` runs".

    Raises ``ValueError`` when the name is empty, too long or has control characters.
    """
    name = f"process.{process_name}.running"
    if not _PROCESS_RE.match(name):
        raise ValueError(f"bad process name for a posture check: {process_name!r}")
    return name


def file_fact(path: str) -> str:
    """The fact name of the IT-configured check "the file ``path`` exists".

    Raises ``ValueError`` when the path is empty, too long or has control characters.
    """
    name = f"file.{path}.present"
    if not _FILE_RE.match(name):
        raise ValueError(f"bad file path for a posture check: {path!r}")
    return name


def fact_spec(name: str) -> FactSpec | None:
    """The spec of a fact name (fixed or one of the configurable families), or None."""
    spec = FACTS.get(name) or CLIENT_FACTS.get(name)
    if spec is not None:
        return spec
    if _PROCESS_RE.match(name):
        return FactSpec(name, "bool", "an IT-configured process is running")
    if _FILE_RE.match(name):
        return FactSpec(name, "bool", "an IT-configured file is present")
    return None


@dataclass(frozen=True, slots=True)
class FactWords:
    """How a fact reads to the employee (plain words, no fact names; :func:`fact_words`
    gives them in the installed language).

    ``label`` titles it in lists ("Firewall"); ``subject`` names it in a sentence ("the
    firewall"); for a yes/no fact, ``yes`` and ``no`` say what true and false mean ("on",
    "off"). ``informational``: it describes the device rather than protect it (its name,
    version, serial), so it is not a check unless a policy asks for it.
    """

    label: str
    subject: str
    yes: str = "yes"
    no: str = "no"
    informational: bool = False


#: "on"/"off": what true and false mean for most yes/no facts.
_ON: Final = QT_TRANSLATE_NOOP("core.wire.posture", "on")
_OFF: Final = QT_TRANSLATE_NOOP("core.wire.posture", "off")


def _w(
    name: str, label: str, subject: str, yes: str = _ON, no: str = _OFF, info: bool = False
) -> tuple[str, FactWords]:
    return name, FactWords(label, subject, yes, no, info)


#: The employee's words for every fixed fact, in English (``fact_words`` translates them
#: and covers the two families).
_WORDS: Final[Mapping[str, FactWords]] = dict(
    [
        _w(
            "os.name",
            QT_TRANSLATE_NOOP("core.wire.posture", "Operating system"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the operating system"),
            info=True,
        ),
        _w(
            "os.distro",
            QT_TRANSLATE_NOOP("core.wire.posture", "Operating system edition"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the operating system edition"),
            info=True,
        ),
        _w(
            "os.version",
            QT_TRANSLATE_NOOP("core.wire.posture", "Operating system version"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the operating system version"),
            info=True,
        ),
        _w(
            "os.build",
            QT_TRANSLATE_NOOP("core.wire.posture", "Operating system build"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the operating system build"),
            info=True,
        ),
        _w(
            "os.kernel",
            QT_TRANSLATE_NOOP("core.wire.posture", "Kernel version"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the kernel version"),
            info=True,
        ),
        _w(
            "os.arch",
            QT_TRANSLATE_NOOP("core.wire.posture", "Processor type"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the processor type"),
            info=True,
        ),
        _w(
            "device.hostname",
            QT_TRANSLATE_NOOP("core.wire.posture", "Computer name"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the computer name"),
            info=True,
        ),
        _w(
            "device.serial",
            QT_TRANSLATE_NOOP("core.wire.posture", "Serial number"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the serial number"),
            info=True,
        ),
        _w(
            "client.version",
            QT_TRANSLATE_NOOP("core.wire.posture", "Rustronaut version"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the Rustronaut version"),
            info=True,
        ),
        _w(
            "disk.encrypted",
            QT_TRANSLATE_NOOP("core.wire.posture", "Disk encryption"),
            QT_TRANSLATE_NOOP("core.wire.posture", "disk encryption"),
        ),
        _w(
            "firewall.enabled",
            QT_TRANSLATE_NOOP("core.wire.posture", "Firewall"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the firewall"),
        ),
        _w(
            "screen_lock.enabled",
            QT_TRANSLATE_NOOP("core.wire.posture", "Screen lock"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the screen lock"),
        ),
        _w(
            "screen_lock.timeout_s",
            QT_TRANSLATE_NOOP("core.wire.posture", "Screen lock delay"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the screen lock delay"),
            info=True,
        ),
        _w(
            "updates.auto",
            QT_TRANSLATE_NOOP("core.wire.posture", "Automatic updates"),
            QT_TRANSLATE_NOOP("core.wire.posture", "automatic updates"),
        ),
        _w(
            "secure_boot.enabled",
            QT_TRANSLATE_NOOP("core.wire.posture", "Secure Boot"),
            QT_TRANSLATE_NOOP("core.wire.posture", "Secure Boot"),
        ),
        _w(
            "av.running",
            QT_TRANSLATE_NOOP("core.wire.posture", "Antivirus"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the antivirus"),
            QT_TRANSLATE_NOOP("core.wire.posture", "running"),
            QT_TRANSLATE_NOOP("core.wire.posture", "not running"),
        ),
        _w(
            "av.products",
            QT_TRANSLATE_NOOP("core.wire.posture", "Antivirus products"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the antivirus products"),
            info=True,
        ),
        _w(
            "mdm.enrolled",
            QT_TRANSLATE_NOOP("core.wire.posture", "Device management"),
            QT_TRANSLATE_NOOP("core.wire.posture", "this device"),
            QT_TRANSLATE_NOOP("core.wire.posture", "enrolled in device management"),
            QT_TRANSLATE_NOOP("core.wire.posture", "not enrolled"),
        ),
        _w(
            "domain.joined",
            QT_TRANSLATE_NOOP("core.wire.posture", "Company domain"),
            QT_TRANSLATE_NOOP("core.wire.posture", "this device"),
            QT_TRANSLATE_NOOP("core.wire.posture", "joined to the company domain"),
            QT_TRANSLATE_NOOP("core.wire.posture", "not joined"),
            info=True,
        ),
        _w(
            "client.managed_rejected",
            QT_TRANSLATE_NOOP("core.wire.posture", "Managed settings problem"),
            QT_TRANSLATE_NOOP("core.wire.posture", "the managed settings problem"),
            info=True,
        ),
    ]
)


def fact_words(name: str) -> FactWords:
    """The employee's words for fact ``name`` (with or without the ``posture.`` prefix),
    in the installed language (``core.i18n``).

    Never raises: an IT-configured process or file check reads as "Program “x”"/"File
    p" (the name and path as IT wrote them); any other name as itself (it is then at
    least the name IT wrote).
    """
    name = name.removeprefix("posture.")
    words = _WORDS.get(name)
    if words is not None:
        return FactWords(
            translate("core.wire.posture", words.label),
            translate("core.wire.posture", words.subject),
            translate("core.wire.posture", words.yes),
            translate("core.wire.posture", words.no),
            words.informational,
        )
    if _PROCESS_RE.match(name):
        proc = name[len("process.") : -len(".running")]
        return FactWords(
            translate("core.wire.posture", "Program “{name}”").format(name=proc),
            translate("core.wire.posture", "the program “{name}”").format(name=proc),
            translate("core.wire.posture", "running"),
            translate("core.wire.posture", "not running"),
        )
    if _FILE_RE.match(name):
        path = name[len("file.") : -len(".present")]
        return FactWords(
            translate("core.wire.posture", "File {path}").format(path=path),
            translate("core.wire.posture", "the file {path}").format(path=path),
            translate("core.wire.posture", "present"),
            translate("core.wire.posture", "missing"),
        )
    return FactWords(
        name, name, translate("core.wire.posture", "yes"), translate("core.wire.posture", "no")
    )


def _kind_ok(kind: Kind, value: object) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


class Fact(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One posture fact.

    Invariants (checked on construction and decoding): the name is a known fact name;
    a ``known`` fact has a value of the name's kind and no reason; an ``unknown`` fact has
    no value and a non-empty reason. Lists are tuples (immutable), at most 256 strings.
    """

    name: str
    status: FactStatus
    collected_at: float
    value: FactValue | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if len(self.name) > _MAX_NAME:
            raise ValueError(f"fact name is over {_MAX_NAME} characters")
        spec = fact_spec(self.name)
        if spec is None:
            raise ValueError(f"unknown fact name {self.name!r}")
        if not self.collected_at >= 0:  # also refuses NaN
            raise ValueError(f"fact {self.name}: bad collected_at {self.collected_at!r}")
        if self.status is FactStatus.KNOWN:
            if self.value is None or not _kind_ok(spec.kind, self.value):
                raise ValueError(f"fact {self.name}: value {self.value!r} is not a {spec.kind}")
            if self.reason is not None:
                raise ValueError(f"fact {self.name}: a known fact carries no reason")
            if isinstance(self.value, str) and len(self.value) > _MAX_STR:
                raise ValueError(f"fact {self.name}: value over {_MAX_STR} characters")
            if isinstance(self.value, tuple) and (
                len(self.value) > _MAX_LIST or any(len(v) > _MAX_STR for v in self.value)
            ):
                raise ValueError(f"fact {self.name}: list too long")
        else:
            if self.value is not None:
                raise ValueError(f"fact {self.name}: an unknown fact carries no value")
            if not self.reason or len(self.reason) > _MAX_REASON:
                raise ValueError(f"fact {self.name}: an unknown fact needs a short reason")

    @property
    def known(self) -> bool:
        """True when the fact could be determined."""
        return self.status is FactStatus.KNOWN

    @classmethod
    def of(cls, name: str, value: FactValue | list[str], at: float) -> Fact:
        """A known fact (lists are converted to tuples). Raises ``ValueError`` on bad input."""
        if isinstance(value, list):
            value = tuple(value)
        return cls(name=name, status=FactStatus.KNOWN, collected_at=at, value=value)

    @classmethod
    def unknown(cls, name: str, reason: str, at: float) -> Fact:
        """An unknown fact with its reason (truncated to the reason cap)."""
        reason = reason.strip() or "unknown"
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 1] + "…"
        return cls(name=name, status=FactStatus.UNKNOWN, collected_at=at, reason=reason)


class PostureReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the device tells the controller about itself, before signing.

    ``v`` is the format version (1). ``facts`` have unique names, at most ``MAX_FACTS``.
    """

    device_id: str
    nonce: str
    issued_at: float
    facts: tuple[Fact, ...]
    v: int = 1

    def __post_init__(self) -> None:
        if self.v != 1:
            raise ValueError(f"posture report version {self.v} is not supported")
        if not self.device_id or len(self.device_id) > _MAX_ID:
            raise ValueError("posture report needs a device_id of 1..256 characters")
        if not self.nonce or len(self.nonce) > _MAX_ID:
            raise ValueError("posture report needs a nonce of 1..256 characters")
        if not self.issued_at >= 0:
            raise ValueError(f"bad issued_at {self.issued_at!r}")
        if len(self.facts) > MAX_FACTS:
            raise ValueError(f"posture report has {len(self.facts)} facts, over {MAX_FACTS}")
        names = [f.name for f in self.facts]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"posture report repeats facts {dupes}")

    def fact(self, name: str) -> Fact | None:
        """The fact called ``name``, or None when the report does not carry it."""
        for f in self.facts:
            if f.name == name:
                return f
        return None


class PostureReportError(ValueError):
    """A posture report was refused; the message says why."""


class ReportMalformedError(PostureReportError):
    """The payload is not a valid posture report."""


class ReportTooLargeError(PostureReportError):
    """The token is larger than the cap."""


class ReportSignatureError(PostureReportError):
    """The JWS is malformed, of another document type, signed by another key or forged."""


class ReportStaleError(PostureReportError):
    """The report is older than allowed, or dated in the future beyond clock skew."""


class ReportDeviceMismatchError(PostureReportError):
    """The report names another device than the one whose key verified it."""


class ReportNonceMismatchError(PostureReportError):
    """The report does not carry the nonce the controller issued."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PostureReport)


def encode_report(report: PostureReport) -> bytes:
    """The report as canonical JSON bytes (the JWS payload). Pure; never raises."""
    return _encoder.encode(report)


def decode_report(payload: bytes) -> PostureReport:
    """Parse and validate a report payload in its canonical form (``core.wire.canonical``:
    no key twice, numbers in their one spelling, nesting bounded); raises
    ``ReportMalformedError``."""
    try:
        check_depth(payload, what="posture report")
        report = _decoder.decode(payload)
        check_canonical(payload, report, _encoder.encode, what="posture report")
    except (CanonicalJsonError, UnicodeDecodeError) as exc:
        raise ReportMalformedError(f"not a valid posture report: {exc}") from exc
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ReportMalformedError(f"not a valid posture report: {exc}") from exc
    return report


def sign_report(report: PostureReport, key: Ed25519PrivateKey, *, kid: str | None = None) -> str:
    """Sign ``report`` with the device key; returns the JWS compact string.

    ``kid`` defaults to ``signing.key_id`` of the public key. Pure, thread-safe.
    """
    return signing.sign(encode_report(report), key, typ=POSTURE_TYP, kid=kid)


def verify_report(
    token: str | bytes,
    public_key: Ed25519PublicKey,
    *,
    device_id: str,
    expected_nonce: str,
    now: float,
    max_age_s: float,
    max_size: int = MAX_REPORT_SIZE,
    kid: str | None = None,
) -> PostureReport:
    """Verify a signed report from ``device_id`` and return it (controller side).

    Checks, in order: size cap, JWS envelope and signature with the device's
    ``public_key`` (``kid`` defaults to its ``key_id``), schema, device id, nonce
    (constant-time), age (``now - issued_at <= max_age_s``, and not more than
    ``CLOCK_SKEW_S`` in the future). Raises a ``PostureReportError`` subclass; never
    returns an unverified report. Pure, thread-safe.
    """
    if len(token) > max_size:
        raise ReportTooLargeError(f"posture report is {len(token)} bytes, over {max_size}")
    keys = {kid or signing.key_id(public_key): public_key}
    try:
        doc = signing.verify(token, keys, typ=POSTURE_TYP, max_size=max_size)
    except signing.SignatureError as exc:
        raise ReportSignatureError(f"posture report signature refused: {exc}") from exc
    report = decode_report(doc.payload)
    if not hmac.compare_digest(report.device_id.encode(), device_id.encode()):
        raise ReportDeviceMismatchError(
            f"posture report is for device {report.device_id!r}, not {device_id!r}"
        )
    if not hmac.compare_digest(report.nonce.encode(), expected_nonce.encode()):
        raise ReportNonceMismatchError("posture report does not carry the expected nonce")
    age = now - report.issued_at
    if age > max_age_s:
        raise ReportStaleError(f"posture report is {age:.0f} s old, over {max_age_s:.0f} s")
    if age < -CLOCK_SKEW_S:
        raise ReportStaleError(f"posture report is dated {-age:.0f} s in the future")
    return report


def facts_for_policy(
    report_or_facts: PostureReport | Iterable[Fact] | Mapping[str, Fact],
) -> dict[str, object]:
    """Map known facts to ``posture.<name>`` keys for the policy engine.

    Unknown facts are absent (so ``exists`` fails and comparisons do not match); list
    values become ``list[str]``. Pure; never raises.
    """
    if isinstance(report_or_facts, PostureReport):
        facts: Iterable[Fact] = report_or_facts.facts
    elif isinstance(report_or_facts, Mapping):
        facts = report_or_facts.values()
    else:
        facts = report_or_facts
    out: dict[str, object] = {}
    for fact in facts:
        if fact.status is not FactStatus.KNOWN or fact.value is None:
            continue
        value = fact.value
        out[f"posture.{fact.name}"] = list(value) if isinstance(value, tuple) else value
    return out
