"""core.i18n without Qt: the .ts reader, the system language, the fallback to English,
and the numerus marking that keeps plural translations across an lupdate run."""

from __future__ import annotations

import locale
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import i18n

_TS = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de" sourcelanguage="en">
<context>
    <name>core.test</name>
    <message>
        <source>Connected</source>
        <translation>Verbunden</translation>
    </message>
    <message>
        <source>Not yet</source>
        <translation type="unfinished">Noch nicht</translation>
    </message>
    <message>
        <source>Gone</source>
        <translation type="vanished">Weg</translation>
    </message>
    <message>
        <source>Old</source>
        <translation type="obsolete">Alt</translation>
    </message>
    <message numerus="yes">
        <source>%n checks</source>
        <translation>
            <numerusform>%n Prüfung</numerusform>
            <numerusform>%n Prüfungen</numerusform>
        </translation>
    </message>
    <message>
        <source>Open</source>
        <comment>verb</comment>
        <translation>Öffnen</translation>
    </message>
    <message>
        <source>Open</source>
        <comment>state</comment>
        <translation>Offen</translation>
    </message>
</context>
<context>
    <name>core.other</name>
    <message>
        <source>Connected</source>
        <translation>Angeschlossen</translation>
    </message>
</context>
</TS>
"""


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    i18n.install(None)


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    (tmp_path / "rustronaut_de.ts").write_text(_TS, "utf-8")
    return tmp_path


def _lookup(catalogue: Path) -> i18n.Translate:
    fn = i18n.load_ts("de", catalogue)
    assert fn is not None
    return fn


# ------------------------------------------------------------------------------ load_ts
def test_load_ts_reads_finished_translations_by_context(catalogue: Path) -> None:
    fn = _lookup(catalogue)
    assert fn("core.test", "Connected", None, -1) == "Verbunden"
    assert fn("core.other", "Connected", None, -1) == "Angeschlossen"
    assert fn("core.nowhere", "Connected", None, -1) == ""


@pytest.mark.parametrize("source", ["Not yet", "Gone", "Old", "Never marked"])
def test_load_ts_leaves_unfinished_vanished_obsolete_and_unknown_texts_english(
    catalogue: Path, source: str
) -> None:
    assert _lookup(catalogue)("core.test", source, None, -1) == ""


@pytest.mark.parametrize(
    ("n", "form"), [(1, "%n Prüfung"), (0, "%n Prüfungen"), (5, "%n Prüfungen")]
)
def test_load_ts_picks_the_numerus_form_by_plural_index(catalogue: Path, n: int, form: str) -> None:
    assert i18n.plural_index("de", n) == (0 if n == 1 else 1)
    assert _lookup(catalogue)("core.test", "%n checks", None, n) == form


def test_load_ts_tells_messages_apart_by_disambiguation(catalogue: Path) -> None:
    fn = _lookup(catalogue)
    assert fn("core.test", "Open", "verb", -1) == "Öffnen"
    assert fn("core.test", "Open", "state", -1) == "Offen"
    assert fn("core.test", "Open", None, -1) == ""


def test_load_ts_without_a_file_or_with_a_broken_one_is_none(tmp_path: Path) -> None:
    assert i18n.load_ts("fr", tmp_path) is None
    (tmp_path / "rustronaut_xx.ts").write_text("<TS><context>", "utf-8")
    assert i18n.load_ts("xx", tmp_path) is None


@pytest.mark.parametrize(
    ("language", "n", "index"),
    [("fr", 0, 0), ("fr", 1, 0), ("fr", 2, 1), ("ja", 7, 0), ("en", 1, 0), ("en", 2, 1)],
)
def test_plural_index_follows_each_languages_rule(language: str, n: int, index: int) -> None:
    assert i18n.plural_index(language, n) == index


# ---------------------------------------------------------------------------- translate
def test_translate_through_an_installed_catalogue_and_n(catalogue: Path) -> None:
    assert i18n.install_from_ts("de", catalogue) == "de"
    assert i18n.installed_language() == "de"
    assert i18n.translate("core.test", "Connected") == "Verbunden"
    assert i18n.translate("core.test", "%n checks", None, 1) == "1 Prüfung"
    assert i18n.translate("core.test", "%n checks", None, 3) == "3 Prüfungen"
    assert i18n.translate("core.test", "Not yet") == "Not yet"  # unfinished: English


def test_translate_without_a_translator_is_the_english_text_with_n() -> None:
    assert i18n.installed_language() == "en"
    assert i18n.translate("core.test", "Connected") == "Connected"
    assert i18n.translate("core.test", "%n checks", None, 4) == "4 checks"
    assert i18n.translate("core.test", "100%n", None, -1) == "100%n"  # no count: untouched


def test_translate_falls_back_to_english_when_the_translator_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(context: str, text: str, disambiguation: str | None, n: int) -> str:
        raise RuntimeError("catalogue exploded")

    i18n.install(broken, "de")
    assert i18n.translate("core.test", "Connected") == "Connected"
    assert i18n.translate("core.test", "%n checks", None, 2) == "2 checks"
    assert "translation failed" in caplog.text


def test_install_none_is_english_again(catalogue: Path) -> None:
    i18n.install_from_ts("de", catalogue)
    i18n.install(None, "de")
    assert i18n.installed_language() == "en"
    assert i18n.translate("core.test", "Connected") == "Connected"


def test_install_from_ts_for_english_or_a_language_not_shipped_installs_english(
    catalogue: Path,
) -> None:
    assert i18n.install_from_ts("en", catalogue) == "en"
    assert i18n.install_from_ts("fr", catalogue) == "en"
    assert i18n.translate("core.test", "Connected") == "Connected"


def test_install_from_ts_follows_the_system_language(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(i18n.LANG_ENV, "de_DE.UTF-8")
    assert i18n.install_from_ts(directory=catalogue) == "de"
    assert i18n.translate("core.test", "Connected") == "Verbunden"


# ---------------------------------------------------------------------- system_language
_LOCALE_VARS = (i18n.LANG_ENV, "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RUSTRONAUT_LANG": "de", "LANG": "fr_FR.UTF-8"}, "de"),
        ({"RUSTRONAUT_LANG": "pt-BR"}, "pt"),
        ({"LANGUAGE": "de:en", "LC_ALL": "fr_FR.UTF-8"}, "de"),
        ({"LC_ALL": "fr_FR.UTF-8", "LANG": "de_DE.UTF-8"}, "fr"),
        ({"LC_MESSAGES": "sv_SE", "LANG": "de_DE"}, "sv"),
        ({"LANG": "de_AT.UTF-8@euro"}, "de"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"RUSTRONAUT_LANG": "  ", "LANG": "de_DE"}, "de"),
    ],
)
def test_system_language_reads_the_override_then_the_locale_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name in _LOCALE_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert i18n.system_language() == expected


def test_system_language_without_any_variable_asks_the_os(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in _LOCALE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(locale, "getlocale", lambda: ("it_IT", "UTF-8"))
    assert i18n.system_language() == "it"
    monkeypatch.setattr(locale, "getlocale", lambda: (None, None))
    assert i18n.system_language() == "en"


# ------------------------------------------------------------------------- mark_numerus
def _lupdated(language: str, plural_translation: str | None = None) -> str:
    """A .ts as lupdate writes it: plurals as plain, unfinished messages."""
    done = (
        f"<translation>{plural_translation}</translation>"
        if plural_translation
        else '<translation type="unfinished"></translation>'
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="{language}" sourcelanguage="en">
<context>
    <name>core.test</name>
    <message>
        <source>%n checks</source>
        {done}
    </message>
    <message>
        <source>Connected</source>
        <translation>Verbunden</translation>
    </message>
</context>
</TS>
"""


def _forms(path: Path) -> tuple[str | None, list[str], str | None]:
    root = ET.parse(path).getroot()
    message = next(m for m in root.iter("message") if m.findtext("source") == "%n checks")
    node = message.find("translation")
    assert node is not None
    return (
        message.get("numerus"),
        [f.text or "" for f in node.iter("numerusform")],
        node.get("type"),
    )


def test_mark_numerus_keeps_the_previous_plural_translations(tmp_path: Path) -> None:
    before = tmp_path / "before.ts"
    before.write_text(_lupdated("de"), "utf-8")
    assert i18n.mark_numerus(before) == 1
    tree = ET.parse(before)
    for form, text in zip(
        tree.getroot().iter("numerusform"), ("%n Prüfung", "%n Prüfungen"), strict=True
    ):
        form.text = text
    for node in tree.getroot().iter("translation"):
        node.attrib.pop("type", None)
    tree.write(before, encoding="utf-8")

    after = tmp_path / "rustronaut_de.ts"
    after.write_text(_lupdated("de"), "utf-8")  # lupdate turned the plural back to plain
    assert i18n.mark_numerus(after, before) == 1
    assert _forms(after) == ("yes", ["%n Prüfung", "%n Prüfungen"], None)
    # and the result is what load_ts reads
    fn = i18n.load_ts("de", tmp_path)
    assert fn is not None
    assert fn("core.test", "%n checks", None, 1) == "%n Prüfung"
    assert fn("core.test", "Connected", None, -1) == "Verbunden"


def test_mark_numerus_without_previous_forms_leaves_the_plural_unfinished(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rustronaut_de.ts"
    path.write_text(_lupdated("de"), "utf-8")
    assert i18n.mark_numerus(path, tmp_path / "missing.ts") == 1
    assert _forms(path) == ("yes", ["", ""], "unfinished")
    assert i18n.mark_numerus(path) == 0  # already marked: nothing to do


def test_mark_numerus_gives_a_language_without_plurals_one_form(tmp_path: Path) -> None:
    path = tmp_path / "rustronaut_ja.ts"
    path.write_text(_lupdated("ja"), "utf-8")
    assert i18n.mark_numerus(path) == 1
    assert _forms(path)[1] == [""]
