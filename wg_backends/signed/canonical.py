"""Canonical JSON for signed objects, and a nesting-depth check before any JSON decoding.

A signed payload (policy bundle, key endorsement, posture report) is accepted only in
its **canonical form**: exactly the bytes our own encoder writes for the value it decodes
to — compact, fields in the schema's order, defaults omitted where the schema omits
them, each number in its one shortest form, each string with the encoder's escapes. So
there is one byte string per meaning, and whatever two parsers might read differently is
refused instead of guessed at:

- a key given twice (``{"version": 1, "version": 9}``: one parser keeps the first, ours
  kept the last);
- a number in another spelling (``1.0`` for an integer, ``1e2``, ``-0``, ``0.50``);
- whitespace, another key order, other escapes.

:func:`check_depth` runs before any decoder: JSON nested deeper than a small limit is
refused with the package's own error in linear time and constant stack, instead of the
decoder's ``RecursionError`` (a 30,000-deep error answer raised a bare one).

Errors::

    CanonicalJsonError (ValueError)   a JSON text was refused; the message says why
                                      (also: unbalanced nesting, found by check_depth)
     ├── NestingTooDeepError          arrays/objects nested deeper than the limit
     ├── DuplicateKeyError            an object names the same key twice
     ├── NonCanonicalNumberError      a number not in its shortest form (1.0, 1e2, -0)
     └── NotCanonicalError            otherwise not the canonical bytes (spacing, order)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

__all__ = [
    "MAX_JSON_DEPTH",
    "CanonicalJsonError",
    "DuplicateKeyError",
    "NestingTooDeepError",
    "NonCanonicalNumberError",
    "NotCanonicalError",
    "check_canonical",
    "check_depth",
]

MAX_JSON_DEPTH: Final = 64
"""Deepest array/object nesting accepted in any JSON from the network (a bundle's deepest
legitimate nesting, conditions 12 deep, is under 30)."""


class CanonicalJsonError(ValueError):
    """A JSON text was refused before or after decoding; the message says why."""


class NestingTooDeepError(CanonicalJsonError):
    """Arrays or objects are nested deeper than the limit."""


class DuplicateKeyError(CanonicalJsonError):
    """An object names the same key twice."""


class NonCanonicalNumberError(CanonicalJsonError):
    """A number is not written in its one canonical (shortest) form."""


class NotCanonicalError(CanonicalJsonError):
    """The bytes are not the canonical encoding of their value (spacing, key order,
    escapes, explicit defaults)."""


# Only quotes and brackets matter for nesting; escaped backslashes and escaped quotes are
# removed first (in that order, so the quote of ``"\\\\"`` still closes its string).
# Objects and arrays nest alike: "{" counts as "[" (a mismatch is the decoder's to refuse).
_KEEP = bytes(c for c in range(256) if c not in b'"[]{}')
_AS_ARRAY = bytes.maketrans(b"{}", b"[]")
_STRING = re.compile(rb'"[^"]*"')


def check_depth(raw: bytes, limit: int = MAX_JSON_DEPTH, *, what: str = "JSON") -> None:
    """Raise ``NestingTooDeepError`` if ``raw`` nests arrays/objects deeper than ``limit``.

    Brackets inside strings do not count. C-speed passes over the input (a few ms for a
    multi-megabyte bundle), then one pass per level over the brackets alone, at most
    ``limit`` of them; no recursion. With more than ``limit`` openers, unbalanced
    brackets or quotes raise ``CanonicalJsonError`` (never valid JSON). Pure; any thread.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return  # cannot nest deeper than the number of openers
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = raw.translate(_AS_ARRAY, _KEEP)
    # Most strings hold no bracket and are "" here: dropping adjacent quote pairs keeps
    # the parity of the quotes after them, and is C-speed; the rest go by regex.
    skeleton = _STRING.sub(b"", skeleton.replace(b'""', b""))
    for _ in range(limit + 1):
        if not skeleton:
            return  # peeled fully in at most ``limit`` passes
        peeled = skeleton.replace(b"[]", b"")  # exactly the innermost level
        if peeled == skeleton:
            # Unbalanced brackets or a stray quote: never valid JSON, and a decoder would
            # recurse through all the openers before it noticed.
            raise CanonicalJsonError(f"{what} is not well-formed JSON (unbalanced nesting)")
        skeleton = peeled
    raise NestingTooDeepError(f"{what} nests deeper than {limit} levels")


_NUMBER_OK = re.compile(r"-?(0|[1-9][0-9]*)")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"the key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _int(text: str) -> int:
    if text == "-0" or not _NUMBER_OK.fullmatch(text):
        raise NonCanonicalNumberError(f"the number {text!r} is not in canonical form")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if msgspec.json.encode(value) != text.encode("ascii"):
        raise NonCanonicalNumberError(f"the number {text!r} is not in canonical form")
    return value


def _constant(text: str) -> Any:
    raise NonCanonicalNumberError(f"{text} is not a JSON number")


def _diagnose(payload: bytes, what: str) -> CanonicalJsonError:
    """Why ``payload`` is not canonical, as precisely as can be said. Only on refusal."""
    try:
        json.loads(
            payload,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except CanonicalJsonError as exc:
        return type(exc)(f"{what}: {exc}")
    except (ValueError, RecursionError):
        pass
    return NotCanonicalError(
        f"{what} is not in canonical form (spacing, key order, escapes or default values "
        "differ from the signer's encoding)"
    )


def check_canonical(
    payload: bytes, value: Any, encode: Callable[[Any], bytes], *, what: str
) -> None:
    """Raise a ``CanonicalJsonError`` unless ``payload`` is exactly ``encode(value)``.

    ``value`` is what ``payload`` decoded to (already schema-checked) and ``encode`` the
    encoder the signer uses, so the canonical form is defined once, by that encoder. The
    error names a duplicate key or a non-canonical number when there is one. Pure; any
    thread.
    """
    if encode(value) != payload:
        raise _diagnose(payload, what)
