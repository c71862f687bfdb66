"""The German catalogue is complete and current (issue 18, Deliver 8).

- The committed ``resources/i18n/rustronaut_de.ts`` is what ``scripts/i18n.sh update``
  makes from today's sources: a string added to ``app/`` or ``core/`` without updating
  the catalogue fails here, and so does one whose German is missing.
- Every message is finished, keeps its ``{placeholders}``, and every plural has German's
  two forms.
- The ``.qm`` the tray loads (built by ``scripts/i18n.sh build``) and the ``.ts`` the agent
  reads without Qt agree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET  # our own committed file
from pathlib import Path

import pytest
from PySide6.QtCore import QTranslator

from core import i18n

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "resources" / "i18n" / "rustronaut_de.ts"
QM = TS.with_suffix(".qm")
PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}")


def _messages(path: Path) -> dict[tuple[str, str, str], ET.Element]:
    root = ET.parse(path).getroot()
    found: dict[tuple[str, str, str], ET.Element] = {}
    for context in root.iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            key = (name, message.findtext("source") or "", message.findtext("comment") or "")
            found[key] = message
    return found


def _lupdate_available() -> bool:
    return (ROOT / ".venv" / "bin" / "pyside6-lupdate").exists() and shutil.which("git") is not None


@pytest.mark.skipif(not _lupdate_available(), reason="needs .venv/bin/pyside6-lupdate and git")
def test_the_catalogue_is_current(tmp_path: Path) -> None:
    env = {**os.environ, "I18N_OUT": str(tmp_path)}
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "i18n.sh"), "update"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    fresh = _messages(tmp_path / TS.name)
    committed = _messages(TS)
    added = sorted(set(fresh) - set(committed))
    gone = sorted(set(committed) - set(fresh))
    assert not added, f"strings not in the catalogue (run scripts/i18n.sh update): {added[:10]}"
    assert not gone, f"strings no longer in the sources (run scripts/i18n.sh update): {gone[:10]}"
    assert len(committed) > 300  # the whole UI, not a sample


def test_every_german_string_is_translated() -> None:
    untranslated: list[str] = []
    bad_placeholders: list[str] = []
    for (context, source, _), message in _messages(TS).items():
        node = message.find("translation")
        assert node is not None, source
        forms = [f.text or "" for f in node.iter("numerusform")]
        if message.get("numerus") == "yes":
            if len(forms) != 2 or not all(f.strip() for f in forms):
                untranslated.append(f"{context}: {source!r} (plural needs 2 forms)")
            elif "%n" not in forms[1]:
                bad_placeholders.append(f"{context}: {source!r} plural form without %n")
        else:
            forms = [node.text or ""]
        if node.get("type") or not all(f.strip() for f in forms):
            untranslated.append(f"{context}: {source!r}")
            continue
        want = sorted(PLACEHOLDER.findall(source))
        for form in forms:
            if sorted(PLACEHOLDER.findall(form)) != want:
                bad_placeholders.append(f"{context}: {source!r} -> {form!r}")
    assert not untranslated, f"{len(untranslated)} untranslated: {untranslated[:15]}"
    assert not bad_placeholders, bad_placeholders[:15]


def test_the_compiled_catalogue_agrees_with_the_source() -> None:
    if not QM.exists():
        pytest.fail(f"{QM} is not built: run scripts/i18n.sh build (bootstrap does)")
    qt = QTranslator()
    assert qt.load(str(QM))
    from_ts = i18n.load_ts("de", TS.parent)
    assert from_ts is not None
    checked = 0
    for (context, source, comment), message in _messages(TS).items():
        n = 2 if message.get("numerus") == "yes" else -1
        ours = from_ts(context, source, comment or None, n)
        assert ours == (qt.translate(context, source, comment or None, n) or ""), source
        checked += 1
    assert checked == len(_messages(TS))


@pytest.mark.parametrize(("n", "form"), [(1, 0), (0, 1), (2, 1), (21, 1)])
def test_german_plurals_pick_qts_form(n: int, form: int) -> None:
    assert i18n.plural_index("de", n) == form
    qt = QTranslator()
    assert qt.load(str(QM))
    plurals = [m for m in _messages(TS).items() if m[1].get("numerus") == "yes"]
    assert plurals, "the catalogue has no plurals"
    (context, source, _), message = plurals[0]
    forms = [f.text for f in message.iter("numerusform")]
    assert qt.translate(context, source, None, n) == forms[form]
