"""The MDM templates in installers/mdm are generated from the settings model and usable.

The committed files must equal a fresh rendering; the ADMX/ADML must be well-formed and
describe exactly the model's keys; the .mobileconfig must load with plistlib and, written
as a managed preferences plist, configure the client; the JSON example must load cleanly;
the JSON Schema and the client's own validation must agree.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import plistlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from core import settings
from core.settings import SPECS, Kind
from core.settings import templates as t
from core.settings.managed.linux import LinuxManagedSource
from core.settings.managed.macos import DOMAIN, MacManagedSource
from core.settings.managed.windows import (
    POLICY_KEY,
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    WindowsManagedSource,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NS = {"p": t.ADMX_NS}
PIN = base64.b64encode(hashlib.sha256(b"spki").digest()).decode()


def _cli_parser() -> argparse.ArgumentParser:
    from core.cli.main import build_parser  # the caller (like scripts/) supplies the CLI

    return build_parser()


def _tiny_parser() -> argparse.ArgumentParser:
    """A stand-in CLI: the templates render any parser they are given."""
    parser = argparse.ArgumentParser(prog="tiny")
    subs = parser.add_subparsers()
    up = subs.add_parser("up", help="bring it up")
    up.add_argument("--fast", action="store_true", help="skip the checks")
    subs.add_parser("down", help="take it down").add_subparsers().add_parser("now")
    return parser


@pytest.fixture(scope="module")
def rendered() -> Mapping[str, bytes]:
    return t.render_all(ROOT, _cli_parser())


def test_generated_list_is_complete(rendered: Mapping[str, bytes]) -> None:
    assert tuple(rendered) == t.GENERATED


# docs/reference.md is left out: its generated part is every command's --help, which
# other areas change; test_reference_shows_every_cli_command keeps it honest instead.
@pytest.mark.parametrize("rel", [g for g in t.GENERATED if g != t.REFERENCE])
def test_committed_file_equals_generated(rel: str, rendered: Mapping[str, bytes]) -> None:
    expected = rendered[rel]
    actual = (ROOT / rel).read_bytes()
    assert actual == expected, f"{rel} is stale: run .venv/bin/{t.COMMAND}"


def test_check_mode_reports_fresh_and_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "admin-guide.md").write_text(f"# x\n{t.DOC_BEGIN}\nold\n{t.DOC_END}\n")
    (tmp_path / "docs" / "reference.md").write_text(f"# y\n{t.REF_BEGIN}\n{t.REF_END}\n")
    cli = _tiny_parser()
    assert t.main(["--check", "--root", str(tmp_path)], cli_parser=cli) == 1
    assert "stale" in capsys.readouterr().out
    assert t.main(["--root", str(tmp_path)], cli_parser=cli) == 0
    assert t.main(["--check", "--root", str(tmp_path)], cli_parser=cli) == 0
    assert (tmp_path / t.ADMX_PATH).exists()
    assert "### `tiny up`" in (tmp_path / t.REFERENCE).read_text()


def test_cli_reference_documents_the_parser_it_is_given() -> None:
    text = t.cli_reference(_tiny_parser())
    assert "### `tiny up`" in text
    assert "skip the checks" in text
    assert "#### `tiny down now`" in text
    assert "### `rustronaut" not in text  # nothing but the given parser


def test_marker_naming_an_older_command_is_rewritten(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    old = "<!-- BEGIN GENERATED: settings table (python -m core.settings.templates) -->"
    (tmp_path / "docs" / "admin-guide.md").write_text(f"# x\n{old}\nold\n{t.DOC_END}\n")
    (tmp_path / "docs" / "reference.md").write_text(f"{t.REF_BEGIN}\n{t.REF_END}\n")
    guide = t.render_all(tmp_path, _tiny_parser())[t.ADMIN_GUIDE].decode()
    assert old not in guide
    assert guide.startswith(f"# x\n{t.DOC_BEGIN}\n")
    assert "\nold\n" not in guide


def test_templates_do_not_import_the_cli() -> None:
    """The settings layer sits below the CLI: not even a function-level import of it."""
    import grimp

    graph = grimp.build_graph("core")
    imported = graph.find_modules_directly_imported_by("core.settings.templates")
    assert not {m for m in imported if m == "core.cli" or m.startswith("core.cli.")}


def test_guide_without_markers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "admin-guide.md").write_text("# no markers\n")
    (tmp_path / "docs" / "reference.md").write_text(f"{t.REF_BEGIN}\n{t.REF_END}\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        t.render_all(tmp_path, _tiny_parser())


def test_admin_guide_documents_every_key() -> None:
    guide = (ROOT / t.ADMIN_GUIDE).read_text()
    for key, spec in SPECS.items():
        assert f"#### `{key}` — {spec.title}" in guide
        assert spec.description in guide


def test_reference_shows_every_cli_command() -> None:
    from core.cli.main import build_parser

    reference = (ROOT / t.REFERENCE).read_text()
    top = t._subcommands(build_parser())
    assert "config" in top
    for name, sub in top.items():
        hint = f"stale: run .venv/bin/{t.COMMAND}"
        assert f"### `rustronaut {name}`" in reference, f"{t.REFERENCE} {hint}"
        for subname in t._subcommands(sub):
            assert f"#### `rustronaut {name} {subname}`" in reference, f"{t.REFERENCE} {hint}"


def _admx() -> ET.Element:
    return ET.parse(ROOT / t.ADMX_PATH).getroot()


def _adml() -> ET.Element:
    return ET.parse(ROOT / t.ADML_PATH).getroot()


def test_admx_policies_match_the_model() -> None:
    root = _admx()
    assert root.tag == f"{{{t.ADMX_NS}}}policyDefinitions"
    policies = root.findall("p:policies/p:policy", NS)
    assert [p.get("name") for p in policies] == list(SPECS)
    categories = {c.get("name") for c in root.findall("p:categories/p:category", NS)}
    for policy in policies:
        key = policy.get("name")
        assert key is not None
        spec = SPECS[key]
        assert policy.get("class") == "Machine"
        assert policy.get("key") == POLICY_KEY == r"SOFTWARE\Policies\Rustronaut\Client"
        parent = policy.find("p:parentCategory", NS)
        assert parent is not None
        assert parent.get("ref") in categories
        if spec.kind is Kind.BOOL:
            assert policy.get("valueName") == key
            on = policy.find("p:enabledValue/p:decimal", NS)
            off = policy.find("p:disabledValue/p:decimal", NS)
            assert on is not None
            assert on.get("value") == "1"
            assert off is not None
            assert off.get("value") == "0"
            continue
        elements = policy.find("p:elements", NS)
        assert elements is not None
        assert len(elements) == 1
        element = elements[0]
        assert element.get("id") == key
        assert element.get("valueName") == key
        tag = element.tag.split("}")[1]
        if spec.kind is Kind.INT:
            assert tag == "decimal"
            assert (element.get("minValue"), element.get("maxValue")) == (
                str(spec.minimum),
                str(spec.maximum),
            )
        elif spec.kind is Kind.STR:
            assert tag == "text"
        elif spec.kind is Kind.ENUM:
            assert tag == "enum"
            values = [v.text for v in element.findall("p:item/p:value/p:string", NS)]
            assert tuple(values) == spec.choices
        else:
            assert tag == "multiText"  # stored as REG_MULTI_SZ, as the reader expects


def test_adml_defines_every_string_and_presentation_the_admx_uses() -> None:
    admx_text = (ROOT / t.ADMX_PATH).read_text()
    adml = _adml()
    strings = {s.get("id"): s.text for s in adml.findall("p:resources/p:stringTable/p:string", NS)}
    presentations = {
        p.get("id"): p for p in adml.findall("p:resources/p:presentationTable/p:presentation", NS)
    }
    used_strings = set(re.findall(r"\$\(string\.([A-Za-z0-9_]+)\)", admx_text))
    used_presentations = set(re.findall(r"\$\(presentation\.([A-Za-z0-9_]+)\)", admx_text))
    assert used_strings <= set(strings)
    assert used_presentations == set(presentations)
    for key, spec in SPECS.items():
        assert strings[key] == spec.title
        explain = strings[f"{key}_Explain"]
        assert explain is not None
        assert explain.startswith(spec.description)
        if spec.kind is not Kind.BOOL:
            refs = [child.get("refId") for child in presentations[key]]
            assert refs == [key]


def test_mobileconfig_is_a_valid_profile_that_configures_the_client(tmp_path: Path) -> None:
    with (ROOT / t.MOBILECONFIG_PATH).open("rb") as fh:
        profile = plistlib.load(fh)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    assert re.fullmatch(r"[0-9A-F-]{36}", profile["PayloadUUID"])
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == DOMAIN
    assert payload["PayloadUUID"] != profile["PayloadUUID"]
    keys = {k for k in payload if not k.startswith("Payload")}
    assert keys == set(t.example_values())
    assert keys <= set(SPECS)
    # What macOS writes to Managed Preferences is the payload's dictionary.
    prefs = tmp_path / f"{DOMAIN}.plist"
    prefs.write_bytes(plistlib.dumps(payload, fmt=plistlib.FMT_BINARY))
    s = settings.load(managed_sources=[MacManagedSource(root=tmp_path, user="")])
    assert s.problems == ()
    for key in keys:
        assert s.locked(key)
        assert SPECS[key].to_json(s.get(key)) == payload[key]


def parse_reg(data: bytes) -> dict[str, dict[str, tuple[object, int]]]:
    """A small reader of regedit's version 5.00 format (what the template uses)."""
    text = data.decode("utf-16")
    lines = text.split("\r\n")
    assert lines[0] == "Windows Registry Editor Version 5.00"
    keys: dict[str, dict[str, tuple[object, int]]] = {}
    current: dict[str, tuple[object, int]] | None = None
    for line in lines[1:]:
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            path = line.strip("[]")
            assert path.startswith("HKEY_LOCAL_MACHINE\\")
            current = keys.setdefault(path.removeprefix("HKEY_LOCAL_MACHINE\\"), {})
            continue
        assert current is not None
        m = re.fullmatch(r'"(?P<name>[^"]+)"=(?P<data>.*)', line)
        assert m, line
        raw = m["data"]
        if raw.startswith("dword:"):
            current[m["name"]] = (int(raw[6:], 16), REG_DWORD)
        elif raw.startswith("hex(7):"):
            blob = bytes(int(b, 16) for b in raw[7:].split(","))
            items = blob.decode("utf-16-le").split("\0")
            current[m["name"]] = (items[:-2], REG_MULTI_SZ)
        else:
            assert raw.startswith('"'), raw
            assert raw.endswith('"'), raw
            current[m["name"]] = (json.loads(raw), REG_SZ)
    return keys


class RegistryFromFile:
    def __init__(self, keys: dict[str, dict[str, tuple[object, int]]]) -> None:
        self.keys = keys

    def read_values(self, key_path: str) -> Mapping[str, tuple[object, int]] | None:
        return self.keys.get(key_path)


def test_reg_example_configures_the_client_through_the_windows_reader() -> None:
    data = (ROOT / t.REG_PATH).read_bytes()
    assert data.startswith(b"\xff\xfe")  # UTF-16LE BOM, as regedit writes
    keys = parse_reg(data)
    assert list(keys) == [POLICY_KEY]
    source = WindowsManagedSource(RegistryFromFile(keys))
    s = settings.load(managed_sources=[source], user_path=ROOT / "no-such-user-file.json")
    assert s.problems == ()
    example = t.example_values()
    assert {i.key for i in s.items() if i.locked} == set(example)
    for key, value in example.items():
        assert SPECS[key].to_json(s.get(key)) == value


def test_reg_renders_lists_as_multi_sz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(t, "example_values", lambda: {"tls_pin_sha256": [PIN, PIN]})
    keys = parse_reg(t.render_reg())
    assert keys[POLICY_KEY]["tls_pin_sha256"] == ([PIN, PIN], REG_MULTI_SZ)
    s = settings.load(
        managed_sources=[WindowsManagedSource(RegistryFromFile(keys))],
        user_path=ROOT / "no-such-user-file.json",
    )
    assert s.tls_pin_sha256 == (PIN, PIN)


def test_linux_example_loads_without_problems(tmp_path: Path) -> None:
    example = json.loads((ROOT / t.EXAMPLE_PATH).read_text())
    (tmp_path / "managed.json").write_text(json.dumps(example))
    s = settings.load(managed_sources=[LinuxManagedSource(tmp_path)], user_path=tmp_path / "u.json")
    assert s.problems == ()
    assert {i.key for i in s.items() if i.locked} == set(example)


def test_schema_lists_every_key_with_its_description() -> None:
    schema = json.loads((ROOT / t.SCHEMA_PATH).read_text())
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == list(SPECS)
    for key, spec in SPECS.items():
        assert schema["properties"][key]["description"] == spec.description


# Values on both sides of each rule; the schema and the loader must agree on each.
AGREEMENT: list[tuple[str, Any]] = [
    ("proxy_port", 9080),
    ("proxy_port", 1023),
    ("proxy_port", 65536),
    ("proxy_port", "9080"),
    ("proxy_port", True),
    ("auto_connect", False),
    ("auto_connect", 0),
    ("preferred_backend", "networkmanager"),
    ("preferred_backend", "NetworkManager"),
    ("log_level", "warning"),
    ("controller_url", "https://ctl.example.com/base"),
    ("controller_url", "http://127.0.0.1:8080/"),
    ("controller_url", "http://localhost"),
    ("controller_url", "http://[::1]:9000"),
    ("controller_url", "http://ctl.example.com"),
    ("controller_url", "https://user@ctl.example.com"),
    ("controller_url", "ctl.example.com"),
    ("controller_url", ""),
    ("support_url", "https://help.example.com"),
    ("support_url", "mailto:help@example.com"),
    ("tls_pin_sha256", [PIN]),
    ("tls_pin_sha256", ["short"]),
    ("tls_pin_sha256", [PIN, ""]),
    ("tls_pin_sha256", PIN),
    ("posture_required_files", ["/opt/agent/ok"]),
    ("posture_required_files", [1]),
    ("posture_watch_seconds", 0),
    ("posture_interval_minutes", 1440),
    ("unknown_key", 1),
]


@pytest.mark.parametrize(("key", "value"), AGREEMENT)
def test_schema_and_loader_agree(key: str, value: Any) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = json.loads((ROOT / t.SCHEMA_PATH).read_text())
    validator = jsonschema_rs.validator_for(schema)
    schema_ok = validator.is_valid({key: value})
    spec = SPECS.get(key)
    try:
        loader_ok = spec is not None and spec.validate(value) is not None
    except settings.SettingValueError:
        loader_ok = False
    assert schema_ok == loader_ok


def test_schema_accepts_the_example() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    schema = json.loads((ROOT / t.SCHEMA_PATH).read_text())
    jsonschema_rs.validator_for(schema).validate(json.loads((ROOT / t.EXAMPLE_PATH).read_text()))
