"""The relay CA: client certificates for devices, issued to the helper's relay key.

A relay (``controller.relay``) accepts a device only with a TLS 1.3 client certificate
this CA issued. The CA's Ed25519 key lives beside the signing keys (``relay-ca.key``,
0600) with its self-signed certificate (``relay-ca.pem``, what a relay's
``client_ca_file`` points at). A device certificate names the device (subject CN and the
SAN URI ``urn:rustronaut:device:<id>``), is for client authentication only and is short
lived (:data:`CERT_LIFETIME_S`): the controller issues a fresh one with every bundle, and a
relay also checks the device against the controller's list of active devices and their
registered relay keys, so revocation does not wait for expiry.

Thread-safe (immutable after load). Raises ``ValueError`` for a key that is not a raw
Ed25519 public key, ``OSError`` for the key files.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CERT_LIFETIME_S",
    "DEVICE_URI_PREFIX",
    "RelayCA",
    "device_of",
    "fingerprint",
]

CA_KEY_FILE: Final = "relay-ca.key"
CA_CERT_FILE: Final = "relay-ca.pem"
#: A device certificate's lifetime; renewed with every bundle (minutes to hours apart).
CERT_LIFETIME_S: Final = 7 * 86400
DEVICE_URI_PREFIX: Final = "urn:rustronaut:device:"
_CA_YEARS: Final = 10
_SKEW_S: Final = 300


def _write_private(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)


class RelayCA:
    """The CA key and certificate; ``issue`` makes device certificates."""

    def __init__(self, key: Ed25519PrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self.cert = cert

    @classmethod
    def create(cls, name: str = "Rustronaut relay CA") -> RelayCA:
        """A new CA (in memory)."""
        key = Ed25519PrivateKey.generate()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(seconds=_SKEW_S))
            .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, None)
        )
        return cls(key, cert)

    @classmethod
    def load_or_create(cls, keys_dir: Path) -> RelayCA:
        """The CA kept in ``keys_dir``, made on first use (key 0600, certificate 0644)."""
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, cert_path = keys_dir / CA_KEY_FILE, keys_dir / CA_CERT_FILE
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{key_path}: not an Ed25519 key")
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            return cls(key, cert)
        ca = cls.create()
        _write_private(
            key_path,
            ca._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        tmp = cert_path.with_name(f".{cert_path.name}.tmp")
        tmp.write_bytes(ca.ca_pem().encode())
        os.chmod(tmp, 0o644)
        os.replace(tmp, cert_path)
        return ca

    def ca_pem(self) -> str:
        """The CA certificate (PEM): a relay's ``client_ca_file``."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(
        self, device_id: str, relay_key: bytes, *, now: float, lifetime_s: int = CERT_LIFETIME_S
    ) -> str:
        """A client certificate (PEM) for ``device_id`` bound to ``relay_key`` (32 raw
        bytes of an Ed25519 public key), valid from ``now`` - 5 min for ``lifetime_s``."""
        public = Ed25519PublicKey.from_public_bytes(relay_key)
        start = dt.datetime.fromtimestamp(now, dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(seconds=_SKEW_S))
            .not_valid_after(start + dt.timedelta(seconds=lifetime_s))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(DEVICE_URI_PREFIX + device_id)]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, None)
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def device_of(cert: x509.Certificate) -> tuple[str, bytes]:
    """``(device id, raw Ed25519 public key)`` of a device certificate (the SAN URI).

    Raises ``ValueError`` when the certificate names no device or its key is not Ed25519.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ValueError("the certificate names no device") from None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)]
    ids = [u[len(DEVICE_URI_PREFIX) :] for u in uris if u.startswith(DEVICE_URI_PREFIX)]
    if len(ids) != 1 or not ids[0]:
        raise ValueError("the certificate does not name exactly one device")
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the certificate's key is not Ed25519")
    return ids[0], key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, hex (logs)."""
    return cert.fingerprint(hashes.SHA256()).hex()
