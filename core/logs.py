"""Logging for the tray app, the CLI and the helper, with secrets redacted everywhere.

``setup(kind)`` installs, on the root logger, a size-rotated file in the platform log
dir (mode 0600; the helper's in the system log dir) and, for the CLI, a console handler
on stderr. Every handler it installs carries :class:`RedactingFilter`, which rewrites
each record — message, arguments, exception traceback and stack — through
:func:`redact` before anything is formatted, so a token, private key, authorization
header or password never reaches a log line. :func:`redact` is plain and pure; the
diagnostics bundle reuses it on whole files.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from core import paths
from core.text import safe_line

__all__ = [
    "LOG_FORMAT",
    "RedactingFilter",
    "RedactingRotatingFileHandler",
    "redact",
    "setup",
]

Kind = Literal["cli", "app", "helper"]
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MAX_BYTES = 2 * 1024 * 1024
BACKUP_COUNT = 5

MASK = "[REDACTED]"

# Names whose values are secrets wherever they appear as JSON/dict keys, form or query
# parameters or "name=value" text — matched as the *end* of the name, so
# ``client_secret``, ``X-Refresh-Token`` or ``wg_private_key`` count too.
_SENSITIVE_SUFFIXES = (
    "token", "device_code", "code_verifier", "secret", "assertion", "password", "passwd",
    "passphrase", "api_key", "apikey", "private_key", "privatekey", "preshared_key",
    "presharedkey", "session_key",
)  # fmt: skip
# Cheap substring checks that gate the name-based rules (see ``redact``).
_SENSITIVE_TRIGGERS = (
    "token", "device_code", "code_verifier", "secret", "assertion", "passw", "passphrase",
    "api_key", "apikey", "private", "preshared", "session_key",
)  # fmt: skip

Replacement = str | Callable[[re.Match[str]], str]


def _sensitive(name: str) -> bool:
    return name.lower().replace("-", "_").endswith(_SENSITIVE_SUFFIXES)


def _mask_quoted_value(match: re.Match[str]) -> str:
    # ``code`` (an OAuth authorization code) is a secret as a JSON key; as free text
    # ("exit code 1") it is not, hence the separate rule below for ``code=``.
    name = match["name"]
    if not (_sensitive(name) or name.lower() == "code"):
        return match[0]
    return f"{match['q']}{name}{match['q']}{match['sep']}{match['vq']}{MASK}{match['vq']}"


def _mask_assigned_quoted(match: re.Match[str]) -> str:
    if not _sensitive(match["name"]):
        return match[0]
    return f"{match['name']}{match['sep']}{match['vq']}{MASK}{match['vq']}"


def _mask_assigned(match: re.Match[str]) -> str:
    if not _sensitive(match["name"]):
        return match[0]
    return f"{match['name']}{match['sep']}{MASK}"


# (pattern, replacement, triggers): a rule runs only if the lower-cased text contains
# one of its triggers, so an ordinary log line costs a few substring checks.
_RULES: list[tuple[re.Pattern[str], Replacement, tuple[str, ...]]] = [
    # PEM private keys, complete or truncated, raw or with escaped newlines (reprs).
    (
        re.compile(
            r"-----BEGIN (?P<label>[A-Z0-9 ]*)PRIVATE KEY-----(?!\[REDACTED\])"
            r"(?:(?!-----)[A-Za-z0-9+/=:,\- \t\r\n]|\\[rnt])*"
            r"(?:-----END (?P=label)PRIVATE KEY-----)?"
        ),
        "-----BEGIN \\g<label>PRIVATE KEY-----" + MASK + "-----END \\g<label>PRIVATE KEY-----",
        ("private key-----",),
    ),
    # JWT / JWS (three parts) and JWE (five parts): base64url JSON header "eyJ…".
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}"),
        "[REDACTED-JWT]",
        ("eyj",),
    ),
    # Authorization-type headers and "Bearer xyz" wherever it appears.
    (
        re.compile(
            r"(?i)\b(?P<name>(?:proxy-)?authorization|cookie|set-cookie|x-api-key)"
            r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<val>[^\r\n\"']+)"
        ),
        "\\g<name>\\g<sep>" + MASK,
        ("authorization", "cookie", "x-api-key"),
    ),
    (
        re.compile(r"(?i)\b(?P<scheme>bearer|basic|dpop)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
        "\\g<scheme> " + MASK,
        ("bearer", "basic", "dpop"),
    ),
    # JSON / Python-dict values: "access_token": "…", 'password': '…'.
    (
        re.compile(
            r"""(?P<q>["'])(?P<name>[A-Za-z_\-]+)(?P=q)(?P<sep>\s*:\s*)"""
            r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)"""
        ),
        _mask_quoted_value,
        (*_SENSITIVE_TRIGGERS, "code"),
    ),
    # WireGuard config / wg show / key=value text: PrivateKey = <44 base64 chars>.
    (
        re.compile(
            r"(?i)\b(?P<name>private[ _-]?key|preshared[ _-]?key)(?P<sep>\s*[:=]\s*[\"']?)"
            r"[A-Za-z0-9+/]{42,43}="
        ),
        "\\g<name>\\g<sep>" + MASK,
        ("private", "preshared"),
    ),
    # name="quoted value" (keyword reprs, shell-like text), then bare form/query values.
    (
        re.compile(
            r"(?<![A-Za-z0-9_\-])(?P<name>[A-Za-z_\-]+)(?P<sep>\s*=\s*)"
            r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)"""
        ),
        _mask_assigned_quoted,
        _SENSITIVE_TRIGGERS,
    ),
    (
        re.compile(
            r"(?<![A-Za-z0-9_\-])(?P<name>[A-Za-z_\-]+)(?P<sep>\s*=\s*)"
            r"(?P<val>(?!\[REDACTED)[^&\s\"',;)\]}]+)"
        ),
        _mask_assigned,
        _SENSITIVE_TRIGGERS,
    ),
    (
        re.compile(r"(?i)(?<![A-Za-z0-9_])(?P<name>code)=(?P<val>[A-Za-z0-9._~%\-]{6,})"),
        "\\g<name>=" + MASK,
        ("code=",),
    ),
    # Credentials inside URLs: scheme://user:password@host.
    (
        re.compile(r"(?P<pre>\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)[^/\s@]+@"),
        "\\g<pre>" + MASK + "@",
        ("://",),
    ),
]


def redact(text: str) -> str:
    """Return ``text`` with every secret we know the shape of replaced by a marker.

    Covers JWTs (JWS and JWE), Authorization/Cookie headers and bearer tokens, OAuth
    tokens and codes in JSON, dict reprs, forms and query strings, passwords and client
    secrets, WireGuard private and preshared keys, PEM private keys and URL credentials.
    Idempotent and pure; safe from any thread.
    """
    lowered = text.lower()
    for pattern, replacement, triggers in _RULES:
        if any(trigger in lowered for trigger in triggers):
            new = pattern.sub(replacement, text)
            if new != text:
                text, lowered = new, new.lower()
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record so that formatting it can no longer reveal a secret.

    The message is rendered with its arguments, redacted and put on one line (control
    characters escaped by ``core.text.safe_line``; ``args`` cleared); an
    exception or stack is formatted once, redacted and stored in ``exc_text`` /
    ``stack_info`` (``exc_info`` cleared) so every later handler sees the clean text.
    Never drops a record and never raises.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: keep what we can rather than lose the record
            message = f"{record.msg!s} (unformattable args)"
        # One record, one line: control characters (a provider's ESC sequence, a forged
        # newline starting a fake log line, a bidi override) become visible escapes.
        record.msg = safe_line(redact(message))
        record.args = None
        if record.exc_info:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler whose files are created with mode 0600 (owner only)."""

    def _open(self) -> object:  # type: ignore[override]
        # Create the file private before the first byte is written, whatever the umask.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.name == "posix":
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


_TAG = "_rustronaut_handler"


def _level(level: str | int | None) -> int:
    if level is None:
        return logging.INFO
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}; use debug, info, warning or error")
    return value


def setup(
    kind: Kind = "cli",
    level: str | int | None = None,
    *,
    log_dir: Path | None = None,
    console: bool | None = None,
    console_level: str | int = logging.WARNING,
) -> Path:
    """Configure the root logger for one program and return the log file's path.

    ``kind`` names the file (``cli.log``, ``app.log``, ``helper.log``) and the default
    directory (the user's log dir; the system log dir for the helper). ``level`` is the
    least severe level kept (default info; the ``log_level`` setting's names work).
    ``console`` (default: only for the CLI) adds a stderr handler at ``console_level``.
    Idempotent: calling again replaces the handlers this function installed earlier.
    Raises ``ValueError`` for an unknown level and ``OSError`` if the directory or file
    cannot be created. Call from the main thread at start-up.
    """
    file_level = _level(level)
    directory = log_dir or (paths.system_log_dir() if kind == "helper" else paths.log_dir())
    paths.ensure_private_dir(directory)
    path = directory / f"{kind}.log"

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _TAG, False):
            root.removeHandler(handler)
            handler.close()

    redactor = RedactingFilter()
    formatter = logging.Formatter(LOG_FORMAT)
    file_handler = RedactingRotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
    )
    file_handler.setLevel(file_level)
    handlers: list[logging.Handler] = [file_handler]
    if console if console is not None else kind == "cli":
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(_level(console_level))
        handlers.append(stream)
    for handler in handlers:
        handler.addFilter(redactor)
        handler.setFormatter(formatter)
        setattr(handler, _TAG, True)
        root.addHandler(handler)
    # Ours first: the filter rewrites the shared record, so every handler that runs after
    # ours (including ones other code added earlier) sees only the redacted text.
    root.handlers.sort(key=lambda h: not getattr(h, _TAG, False))
    root.setLevel(min(h.level for h in handlers))
    logging.captureWarnings(True)
    return path
