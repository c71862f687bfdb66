"""Shared Windows helpers: PowerShell argv, its JSON, and ``reg query`` output."""

from __future__ import annotations

import json
import re
from typing import Any

from core.posture.errors import ParseError
from core.posture.text import parse_int

__all__ = ["RegValue", "parse_reg_query", "powershell", "ps_json_objects", "reg_values"]

RegValue = str | int


def powershell(script: str) -> tuple[str, ...]:
    """Argv running ``script`` in Windows PowerShell without profile or prompts."""
    return (
        "powershell.exe",
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-Command",
        script,
    )


def ps_json_objects(text: str) -> list[dict[str, Any]]:
    """``ConvertTo-Json`` output → list of objects.

    PowerShell prints one object (not a one-element array) for a single result and
    nothing at all for none; both are normalised here. Raises ``ParseError``.
    """
    text = text.strip().lstrip("\ufeff")
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"PowerShell JSON: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(i, dict) for i in items):
        raise ParseError("PowerShell JSON: expected objects")
    return items


_REG_LINE = re.compile(r"^ {4}(.+?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$")


def parse_reg_query(text: str) -> dict[str, dict[str, RegValue]]:
    """``reg query`` output → {key path: {value name: value}}.

    ``REG_DWORD``/``REG_QWORD`` become ints, everything else the text as printed.
    Lines that are neither a key (``HKEY_…``) nor a value are ignored (the localized
    "End of search" footer). Names are kept as printed; look them up case-insensitively
    with ``reg_values``.
    """
    out: dict[str, dict[str, RegValue]] = {}
    current: dict[str, RegValue] | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("HKEY_"):
            current = out.setdefault(line.strip(), {})
            continue
        m = _REG_LINE.match(line)
        if m is None or current is None:
            continue
        name, kind, data = m.group(1), m.group(2), (m.group(3) or "").strip()
        if kind in ("REG_DWORD", "REG_QWORD"):
            number = parse_int(data)
            if number is None:
                raise ParseError(f"reg query: {name} is not a number: {data!r}")
            current[name] = number
        else:
            current[name] = data
    return out


def reg_values(text: str) -> dict[str, RegValue]:
    """All values of a single-key ``reg query``, with lower-cased names."""
    merged: dict[str, RegValue] = {}
    for values in parse_reg_query(text).values():
        for name, value in values.items():
            merged.setdefault(name.lower(), value)
    return merged
