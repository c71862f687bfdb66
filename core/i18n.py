"""Translated text for the employee, through Qt's translation system, without Qt in core.

Every string the employee sees is marked for ``pyside6-lupdate``, which extracts it into
``resources/i18n/rustronaut_<lang>.ts`` (translated there, committed) and
``pyside6-lrelease`` builds the ``.qm`` files the tray loads:

- ``translate(context, text)`` where the text is used (``n=`` for plurals: ``%n`` in the
  text is the count);
- ``QT_TRANSLATE_NOOP(context, text)`` on constants defined before any translation is
  installed (module level); they are translated where used with
  ``translate(context, constant)``.

Core never imports Qt (the import contract): the tray installs a Qt-backed function with
:func:`install` (its ``QTranslator`` over the ``.qm``), and a process without Qt (the
agent, the CLI) reads the same translations from the ``.ts`` file with :func:`load_ts`.
Either way an untranslated text stays English: translation never fails a caller.

The language follows the system locale; ``RUSTRONAUT_LANG`` overrides it (``en``, ``de``).
"""

from __future__ import annotations

import locale
import logging
import os
import sys
import threading
import xml.etree.ElementTree as ET  # our own shipped files only, never remote input
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "LANG_ENV",
    "QT_TRANSLATE_NOOP",
    "Translate",
    "i18n_dir",
    "install",
    "install_from_ts",
    "installed_language",
    "load_ts",
    "mark_numerus",
    "plural_index",
    "system_language",
    "translate",
]

_log = logging.getLogger(__name__)

#: Overrides the system locale's language (``en``, ``de``); tests and support use it.
LANG_ENV = "RUSTRONAUT_LANG"

#: ``(context, text, disambiguation, n) -> translation`` ("" when there is none).
Translate = Callable[[str, str, "str | None", int], str]

_lock = threading.Lock()
_impl: Translate | None = None
_language = "en"


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """Mark ``text`` for extraction in ``context``; returns it untranslated."""
    del context
    return text


def translate(context: str, text: str, disambiguation: str | None = None, n: int = -1) -> str:
    """``text`` in the installed language (English when untranslated); ``%n`` becomes
    ``n`` when ``n`` ≥ 0, after the plural form for ``n`` is chosen."""
    impl = _impl
    out = ""
    if impl is not None:
        try:
            out = impl(context, text, disambiguation, n)
        except Exception:  # a broken catalogue must never break the caller
            _log.exception("translation failed for %r", text)
    if not out:
        out = text
    if n >= 0:
        out = out.replace("%n", str(n))
    return out


def install(fn: Translate | None, language: str = "en") -> None:
    """Use ``fn`` for every later :func:`translate` (``None``: English again)."""
    global _impl, _language
    with _lock:
        _impl = fn
        _language = language if fn is not None else "en"


def installed_language() -> str:
    """The language installed with :func:`install` (``en`` when none)."""
    return _language


def system_language() -> str:
    """The two-letter language to show: ``RUSTRONAUT_LANG``, else the locale's
    (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, then the OS's), else ``en``."""
    forced = os.environ.get(LANG_ENV, "").strip()
    if forced:
        return _language_of(forced)
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").strip()
        if value:
            return _language_of(value.split(":")[0])
    try:
        code = locale.getlocale()[0] or ""
    except ValueError:
        code = ""
    return _language_of(code)


def _language_of(code: str) -> str:
    lang = code.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return "en" if lang in ("", "c", "posix") or not lang.isalpha() else lang


def i18n_dir() -> Path:
    """Where the ``.ts``/``.qm`` files are: ``resources/i18n`` of this checkout, or of the
    frozen bundle."""
    base = getattr(sys, "_MEIPASS", None)
    root = Path(base) if base else Path(__file__).resolve().parent.parent
    return root / "resources" / "i18n"


def plural_index(language: str, n: int) -> int:
    """Which numerus form of ``language`` fits ``n`` (Qt's rules for the languages we
    ship; "one" and "other" for the rest)."""
    if language in ("fr", "pt_BR"):
        return 0 if n in (0, 1) else 1
    if language in ("ja", "ko", "zh", "vi", "th", "id"):
        return 0
    return 0 if n == 1 else 1


def load_ts(language: str, directory: Path | None = None) -> Translate | None:
    """A translate function over ``rustronaut_<language>.ts`` (finished translations
    only), ``None`` when there is no such file or it cannot be read (logged)."""
    path = (directory or i18n_dir()) / f"rustronaut_{language}.ts"
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own shipped file (as trusted as our code)
    except (OSError, ET.ParseError) as exc:
        _log.error("cannot read the %s translations (%s): English it is", language, exc)
        return None
    table: dict[tuple[str, str, str], tuple[str, ...]] = {}
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            source = message.findtext("source")
            node = message.find("translation")
            if source is None or node is None or node.get("type"):
                continue  # unfinished, vanished or obsolete: English
            forms = tuple(f.text or "" for f in node.iter("numerusform"))
            if not forms:
                forms = (node.text or "",)
            table[(name, source, message.findtext("comment") or "")] = forms

    def lookup(context: str, text: str, disambiguation: str | None, n: int) -> str:
        forms = table.get((context, text, disambiguation or ""))
        if not forms:
            return ""
        index = plural_index(language, n) if n >= 0 and len(forms) > 1 else 0
        return forms[min(index, len(forms) - 1)]

    return lookup


def install_from_ts(language: str | None = None, directory: Path | None = None) -> str:
    """Install the ``.ts`` translations of ``language`` (default: the system's) in a
    process without Qt; the language installed (``en`` when none is shipped)."""
    lang = language or system_language()
    fn = load_ts(lang, directory) if lang != "en" else None
    install(fn, lang if fn is not None else "en")
    return installed_language()


def _plural_forms(path: Path) -> dict[tuple[str, str], list[str]]:
    root = ET.parse(path).getroot()  # noqa: S314 - our own file
    found: dict[tuple[str, str], list[str]] = {}
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            node = message.find("translation")
            if message.get("numerus") == "yes" and node is not None and not node.get("type"):
                source = message.findtext("source") or ""
                found[(name, source)] = [f.text or "" for f in node.iter("numerusform")]
    return found


def mark_numerus(path: Path, previous: Path | None = None) -> int:
    """Mark every message of the ``.ts`` at ``path`` whose source has ``%n`` as a plural
    (lupdate does so only for ``self.tr(text, "", n)``, and turns other plurals back into
    plain messages when it updates a file); the finished plural translations of
    ``previous`` (the file before lupdate ran) are put back. Notes lupdate took from
    unrelated ``#:`` comments are dropped. How many were marked."""
    had = previous is not None and previous.is_file() and previous.stat().st_size > 0
    kept = _plural_forms(previous) if had and previous is not None else {}
    tree = ET.parse(path)  # noqa: S314 - our own file
    root = tree.getroot()
    language = (root.get("language") or "en").split("_")[0]
    forms = 1 if plural_index(language, 2) == 0 else 2
    marked = 0
    for message in root.iter("message"):  # lupdate takes any "#:" comment as a note
        for note in message.findall("extracomment"):
            message.remove(note)
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            source = message.findtext("source") or ""
            node = message.find("translation")
            if "%n" not in source or node is None or message.get("numerus") == "yes":
                continue
            message.set("numerus", "yes")
            old = kept.get((name, source))
            texts = old if old and len(old) == forms else [node.text or ""] * forms
            node.text = None
            if old and len(old) == forms:
                node.attrib.pop("type", None)
            for text in texts:
                ET.SubElement(node, "numerusform").text = text
            marked += 1
    ET.indent(tree, space="    ")
    body = ET.tostring(root, encoding="unicode")
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n{body}\n', "utf-8")
    return marked


if __name__ == "__main__":  # python -m core.i18n numerus <file.ts> [<before.ts>]
    if sys.argv[1:2] != ["numerus"] or len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m core.i18n numerus <file.ts> [<file before lupdate>]")
    before = Path(sys.argv[3]) if len(sys.argv) == 4 else None
    print(f"{sys.argv[2]}: {mark_numerus(Path(sys.argv[2]), before)} plural(s) marked")
