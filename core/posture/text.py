"""Small parsing helpers shared by the collectors (pure functions)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["PLACEHOLDER_SERIALS", "fold", "key_values", "normalise_arch", "parse_int"]


#: Values firmware puts in the serial field when there is none.
PLACEHOLDER_SERIALS = frozenset(
    {
        "",
        "0",
        "none",
        "default string",
        "to be filled by o.e.m.",
        "system serial number",
        "not specified",
        "not applicable",
        "0123456789",
    }
)


def fold(text: str) -> str:
    """Case-fold, drop accents and the U+FFFD replacement character, squeeze spaces.

    Localized tools print "État"/"Vollständig"; once folded, tables of known words in
    several languages match even when a console code page mangled the accents.
    """
    decomposed = unicodedata.normalize("NFKD", text.replace("\ufffd", ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain.casefold()).strip()


def key_values(text: str, sep: str = ":") -> dict[str, str]:
    """``key<sep>value`` lines → dict (keys and values stripped; first occurrence wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if sep not in line:
            continue
        key, _, value = line.partition(sep)
        key = key.strip()
        if key and key not in out:
            out[key] = value.strip()
    return out


def parse_int(text: str) -> int | None:
    """A decimal or ``0x`` hex integer, else None."""
    text = text.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armv7",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
}


def normalise_arch(machine: str) -> str:
    """``AMD64``/``x86_64`` → ``x86_64``, ``aarch64``/``ARM64`` → ``arm64`` (else as is)."""
    return _ARCH.get(machine.strip().lower(), machine.strip().lower())
