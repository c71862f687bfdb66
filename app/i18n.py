"""The tray's language: Qt translators over the ``.qm`` files, following the system locale.

:func:`install` loads ``resources/i18n/rustronaut_<lang>.qm`` (built from the committed
``.ts`` by ``pyside6-lrelease``: ``scripts/i18n.sh``) into a ``QTranslator`` installed on
the application and hands it to :mod:`core.i18n`, whose ``translate(context, text)``
every string in ``app/`` and ``core/`` goes through (one marking rule for lupdate, explicit
contexts, no ``self.tr`` whose context would change in a subclass). Qt's own strings
(standard buttons) come from Qt's ``qtbase_<lang>.qm`` when the Qt build ships it.

The language is ``RUSTRONAUT_LANG`` if set, else the system locale's; English needs no
files. A missing ``.qm`` falls back to the ``.ts`` (a checkout without a build) and then
to English, logged: the tray always starts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from core import i18n as core_i18n

__all__ = ["install", "language", "uninstall"]

_log = logging.getLogger(__name__)
_installed: list[QTranslator] = []  # kept alive: Qt does not own installed translators


def language() -> str:
    """The two-letter language to show: ``RUSTRONAUT_LANG``, else the system locale's."""
    forced = os.environ.get(core_i18n.LANG_ENV, "").strip()
    if forced:
        return core_i18n.system_language()
    name = QLocale.system().name()  # "de_DE"; "C" when no locale is set
    lang = name.split("_")[0].lower()
    return "en" if lang in ("", "c") else lang


def install(lang: str | None = None, directory: Path | None = None) -> str:
    """Install the translations of ``lang`` (default :func:`language`) on the running
    application and in :mod:`core.i18n`; the language installed (``en`` when none)."""
    uninstall()
    lang = lang or language()
    app = QCoreApplication.instance()
    if lang == "en":
        return "en"
    folder = directory or core_i18n.i18n_dir()
    ours = QTranslator()
    if ours.load(str(folder / f"rustronaut_{lang}.qm")):
        if app is not None:
            app.installTranslator(ours)
        _installed.append(ours)

        def through_qt(context: str, text: str, disambiguation: str | None, n: int) -> str:
            return ours.translate(context, text, disambiguation, n) or ""

        core_i18n.install(through_qt, lang)
    else:
        _log.warning("no compiled %s translations in %s: reading the .ts file", lang, folder)
        if core_i18n.install_from_ts(lang, folder) == "en":
            _log.warning("no %s translations shipped: English it is", lang)
            return "en"
    qt = QTranslator()
    if app is not None and qt.load(
        QLocale(lang), "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    ):
        app.installTranslator(qt)
        _installed.append(qt)
    QLocale.setDefault(QLocale(lang))
    return lang


def uninstall() -> None:
    """Back to English (tests switch languages)."""
    app = QCoreApplication.instance()
    while _installed:
        translator = _installed.pop()
        if app is not None:
            app.removeTranslator(translator)
    core_i18n.install(None)
    QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
