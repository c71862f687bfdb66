"""Text from elsewhere is data: control characters escaped before a terminal, log or widget.

A provider's ``error_description``, a controller's message or a user's name can carry
escape sequences (``ESC [ 2 J`` clears a terminal, OSC 8 makes fake links, OSC 52 writes
the clipboard), newlines that forge extra log lines, or bidi overrides that show text in
another order than it is stored ("Trojan Source"). :func:`safe_text` turns every such
character into a visible escape (``\\x1b``, ``\\n``, ``\\u202e``) so the words stay words;
printable text, including non-ASCII letters, passes unchanged. Pure, thread-safe, no
imports from the rest of ``core``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["https_link", "safe_json", "safe_line", "safe_text"]

# C0 controls (except the ones kept on request), DEL, C1 controls, and the Unicode
# format characters that reorder or hide text: bidi embeddings/overrides/isolates, the
# Arabic letter mark, zero-width joiners/spaces, the BOM, and line/paragraph separators.
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_FORMAT = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
_UNSAFE_KEEP_NEWLINES = re.compile(f"[{_CONTROL}{_FORMAT}\r]")
_UNSAFE = re.compile(f"[{_CONTROL}{_FORMAT}\t\n\r]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match[0]
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_line(text: object) -> str:
    """``text`` on one line: every control, bidi and invisible format character escaped,
    newlines and tabs included. For one-line fields: log messages, a name, an email."""
    return _UNSAFE.sub(_escape, str(text))


def safe_text(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with control, bidi and invisible format characters escaped.

    With ``keep_newlines``, ``\\n`` and tabs stay as they are (``\\r`` does not: it
    would let the data overwrite the line), for a multi-line message
    composed by us around data that was already made safe; everything else is escaped.
    """
    if not keep_newlines:
        return safe_line(text)
    return _UNSAFE_KEEP_NEWLINES.sub(_escape, str(text))


# What a JSON encoder may leave raw inside a string (it must escape C0 itself) that a
# terminal would still act on: DEL, C1 controls (0x9b is a one-byte CSI) and the format
# characters above.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_FORMAT}]")


def safe_json(document: str) -> str:
    """A JSON ``document`` with DEL, C1 and bidi/invisible characters written as ``\\uXXXX``.

    The same JSON value (such characters can only occur inside strings, where the escape
    means the same character), but safe to print on a terminal. Pure.
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", document)


# Anything a browser would quietly drop, re-read or treat as a separator inside a URL.
_URL_UNSAFE = re.compile(f'[{_CONTROL}{_FORMAT}\\s\\\\"<>`{{}}|^]')


def https_link(url: object) -> str | None:
    """``url`` when it may be offered as a link, else None.

    A link is only ever an ``https://`` URL with a host, no user name or password
    (``https://help.corp@evil.example`` reads as the company's page but is not), a valid
    port if any, and no control, format, white-space or quoting characters. Everything
    else (``javascript:``, ``file:``, ``data:``, ``http:``, a bare host, text that merely
    contains a URL) is shown as text, never opened. Pure.
    """
    if not isinstance(url, str) or not url or len(url) > 2048 or _URL_UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or parts.hostname.startswith("."):
        return None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return None
    if port == 0 or not url.startswith("https://"):
        return None  # "HTTPS://" or "https:/host" are not how a policy writes a link
    return url
