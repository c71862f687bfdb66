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

__all__ = ["safe_line", "safe_text"]

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
