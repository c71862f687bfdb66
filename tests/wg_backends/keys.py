"""Fixed test keys (real X25519 key pairs made once with ``wg genkey | wg pubkey``)."""

from __future__ import annotations

import base64
import subprocess


def genkey() -> tuple[str, str]:
    """A fresh (private, public) WireGuard key pair via ``wg``."""
    priv = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    pub = subprocess.run(
        ["wg", "pubkey"], input=priv, capture_output=True, text=True, check=True
    ).stdout
    return priv.strip(), pub.strip()


PRIV = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PUB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PSK = base64.b64encode(bytes(range(32))).decode()
