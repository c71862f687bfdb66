"""Generate the IT templates and the admin guide's key table from the settings model.

One source of truth: every file below is rendered from ``core.settings.model.SPECS``,
and a test regenerates them and compares with the committed copies. Regenerate after
changing the model::

    .venv/bin/python scripts/gen_templates.py            # write into the repository
    .venv/bin/python scripts/gen_templates.py --check    # exit 1 if anything is stale

Outputs (relative to the repository root): ``installers/mdm/managed.schema.json``,
``installers/mdm/managed.example.json``, ``installers/mdm/windows/rustronaut.admx``,
``installers/mdm/windows/en-US/rustronaut.adml``,
``installers/mdm/windows/rustronaut-example.reg``,
``installers/mdm/macos/com.rustronaut.client.mobileconfig`` and the generated sections of
``docs/admin-guide.md`` (every key) and ``docs/reference.md`` (every CLI command's help,
taken from the real parser so the reference cannot drift from the code). Rendering is
pure and deterministic (fixed UUIDs, sorted keys, fixed help width).

The CLI sits above this package (it imports ``core.settings``), so the CLI's parser is
passed in by the caller, never imported here: ``scripts/gen_templates.py`` builds it
and calls :func:`main`. The layers contract in ``pyproject.toml`` keeps it that way.
"""

from __future__ import annotations

import argparse
import json
import os
import plistlib
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.settings.managed.macos import DOMAIN
from core.settings.managed.windows import POLICY_KEY
from core.settings.model import SPECS, Kind, SettingSpec

__all__ = [
    "ADMIN_GUIDE",
    "COMMAND",
    "DOC_BEGIN",
    "DOC_END",
    "GENERATED",
    "admin_guide_table",
    "cli_reference",
    "example_values",
    "json_schema",
    "main",
    "mobileconfig",
    "render_adml",
    "render_admx",
    "render_all",
    "render_reg",
]

ADMX_NS = "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"
ADMX_PATH = "installers/mdm/windows/rustronaut.admx"
ADML_PATH = "installers/mdm/windows/en-US/rustronaut.adml"
REG_PATH = "installers/mdm/windows/rustronaut-example.reg"
SCHEMA_PATH = "installers/mdm/managed.schema.json"
EXAMPLE_PATH = "installers/mdm/managed.example.json"
MOBILECONFIG_PATH = "installers/mdm/macos/com.rustronaut.client.mobileconfig"
ADMIN_GUIDE = "docs/admin-guide.md"
GENERATED = (
    "installers/mdm/managed.schema.json",
    "installers/mdm/managed.example.json",
    "installers/mdm/windows/rustronaut.admx",
    "installers/mdm/windows/en-US/rustronaut.adml",
    "installers/mdm/windows/rustronaut-example.reg",
    "installers/mdm/macos/com.rustronaut.client.mobileconfig",
    "docs/admin-guide.md",
    "docs/reference.md",
)
"""Every file ``render_all`` produces, relative to the repository root."""
COMMAND = "python scripts/gen_templates.py"
"""How to regenerate; named in the markers and in staleness messages."""
DOC_BEGIN = f"<!-- BEGIN GENERATED: settings table ({COMMAND}) -->"
DOC_END = "<!-- END GENERATED: settings table -->"
REFERENCE = "docs/reference.md"
REF_BEGIN = f"<!-- BEGIN GENERATED: CLI help ({COMMAND}) -->"
REF_END = "<!-- END GENERATED: CLI help -->"

_REG_TYPE = {
    Kind.BOOL: "REG_DWORD (1 = on, 0 = off)",
    Kind.INT: "REG_DWORD",
    Kind.STR: "REG_SZ",
    Kind.ENUM: "REG_SZ",
    Kind.STR_LIST: "REG_MULTI_SZ",
}
_UUID_NS = uuid.UUID("5b0c3f36-2d0e-4d4b-9a43-8f3f1c1c0a11")  # fixed: output is stable


def example_values() -> dict[str, Any]:
    """The keys a typical deployment sets, with example values (model order)."""
    return {k: s.to_json(s.example) for k, s in SPECS.items() if s.example is not None}


def _json_type(spec: SettingSpec) -> dict[str, Any]:
    if spec.kind is Kind.BOOL:
        return {"type": "boolean"}
    if spec.kind is Kind.INT:
        return {"type": "integer", "minimum": spec.minimum, "maximum": spec.maximum}
    if spec.kind is Kind.ENUM:
        return {"type": "string", "enum": list(spec.choices)}
    text: dict[str, Any] = {"type": "string", "maxLength": spec.max_length}
    if spec.pattern:
        text["pattern"] = spec.pattern
    if spec.fmt:
        text["format"] = spec.fmt
    if spec.kind is Kind.STR:
        return text
    text["minLength"] = 1
    return {"type": "array", "items": text, "maxItems": spec.max_items}


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a managed settings document."""
    props: dict[str, Any] = {}
    for key, spec in SPECS.items():
        props[key] = {
            "title": spec.title,
            "description": spec.description,
            **_json_type(spec),
            "default": spec.to_json(spec.default),
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Rustronaut Client managed settings",
        "description": (
            "Settings an organization enforces on Rustronaut Client. Every key is optional; "
            "a key that is present is locked for the user. Linux: "
            "/etc/rustronaut/managed.json and /etc/rustronaut/managed.d/*.json."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": props,
    }


def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _categories() -> list[str]:
    out: list[str] = []
    for spec in SPECS.values():
        if spec.category not in out:
            out.append(spec.category)
    return out


def _default_text(spec: SettingSpec) -> str:
    if spec.kind is Kind.BOOL:
        return "on" if spec.default else "off"
    if spec.kind is Kind.STR_LIST:
        return "empty" if not spec.default else ", ".join(spec.default)
    if spec.default == "":
        return "not set"
    return str(spec.default)


def _xml(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def render_admx() -> str:
    """The ADMX policy definitions (Group Policy / Intune ADMX ingestion)."""
    ET.register_namespace("", ADMX_NS)
    q = f"{{{ADMX_NS}}}"
    root = ET.Element(q + "policyDefinitions", revision="1.0", schemaVersion="1.0")
    ns = ET.SubElement(root, q + "policyNamespaces")
    ET.SubElement(ns, q + "target", prefix="rustronaut", namespace="Rustronaut.Policies.Client")
    ET.SubElement(root, q + "resources", minRequiredRevision="1.0")
    supported = ET.SubElement(ET.SubElement(root, q + "supportedOn"), q + "definitions")
    ET.SubElement(
        supported, q + "definition", name="SUPPORTED_Rustronaut_0_1",
        displayName="$(string.SUPPORTED_Rustronaut_0_1)",
    )  # fmt: skip
    cats = ET.SubElement(root, q + "categories")
    ET.SubElement(cats, q + "category", name="Rustronaut", displayName="$(string.Cat_Rustronaut)")
    for category in _categories():
        cat = ET.SubElement(
            cats, q + "category", name=f"Rustronaut_{_ident(category)}",
            displayName=f"$(string.Cat_{_ident(category)})",
        )  # fmt: skip
        ET.SubElement(cat, q + "parentCategory", ref="Rustronaut")
    policies = ET.SubElement(root, q + "policies")
    for key, spec in SPECS.items():
        attrs = {
            "name": key,
            "class": "Machine",
            "displayName": f"$(string.{key})",
            "explainText": f"$(string.{key}_Explain)",
            "key": POLICY_KEY,
        }
        if spec.kind is Kind.BOOL:
            attrs["valueName"] = key
        else:
            attrs["presentation"] = f"$(presentation.{key})"
        policy = ET.SubElement(policies, q + "policy", attrs)
        ET.SubElement(policy, q + "parentCategory", ref=f"Rustronaut_{_ident(spec.category)}")
        ET.SubElement(policy, q + "supportedOn", ref="SUPPORTED_Rustronaut_0_1")
        if spec.kind is Kind.BOOL:
            on = ET.SubElement(policy, q + "enabledValue")
            ET.SubElement(on, q + "decimal", value="1")
            off = ET.SubElement(policy, q + "disabledValue")
            ET.SubElement(off, q + "decimal", value="0")
            continue
        elements = ET.SubElement(policy, q + "elements")
        if spec.kind is Kind.INT:
            ET.SubElement(
                elements, q + "decimal", id=key, valueName=key, required="true",
                minValue=str(spec.minimum), maxValue=str(spec.maximum),
            )  # fmt: skip
        elif spec.kind is Kind.STR:
            ET.SubElement(
                elements, q + "text", id=key, valueName=key, required="true",
                maxLength=str(spec.max_length),
            )  # fmt: skip
        elif spec.kind is Kind.ENUM:
            enum = ET.SubElement(elements, q + "enum", id=key, valueName=key, required="true")
            for choice in spec.choices:
                item = ET.SubElement(
                    enum, q + "item", displayName=f"$(string.{key}_{_ident(choice)})"
                )
                ET.SubElement(ET.SubElement(item, q + "value"), q + "string").text = choice
        else:
            ET.SubElement(elements, q + "multiText", id=key, valueName=key, required="true")
    return _xml(root)


def _explain(spec: SettingSpec) -> str:
    lines = [
        spec.description,
        "",
        f"Default when not configured: {_default_text(spec)}.",
        f"Registry: HKLM\\{POLICY_KEY}\\{spec.key} ({_REG_TYPE[spec.kind]}).",
    ]
    if spec.kind is Kind.INT:
        lines.append(f"Allowed range: {spec.minimum}–{spec.maximum}.")
    if spec.kind is Kind.STR_LIST:
        lines.append("Enter one item per line.")
    lines.append("When this policy is configured, users cannot change the setting.")
    return "\n".join(lines)


def render_adml() -> str:
    """The en-US ADML strings and presentations matching :func:`render_admx`."""
    ET.register_namespace("", ADMX_NS)
    q = f"{{{ADMX_NS}}}"
    root = ET.Element(q + "policyDefinitionResources", revision="1.0", schemaVersion="1.0")
    ET.SubElement(root, q + "displayName").text = "Rustronaut Client"
    ET.SubElement(root, q + "description").text = "Managed settings of Rustronaut Client."
    resources = ET.SubElement(root, q + "resources")
    strings = ET.SubElement(resources, q + "stringTable")

    def string(ident: str, text: str) -> None:
        ET.SubElement(strings, q + "string", id=ident).text = text

    string("SUPPORTED_Rustronaut_0_1", "Rustronaut Client 0.1 or later")
    string("Cat_Rustronaut", "Rustronaut Client")
    for category in _categories():
        string(f"Cat_{_ident(category)}", category)
    presentations = ET.SubElement(resources, q + "presentationTable")
    for key, spec in SPECS.items():
        string(key, spec.title)
        string(f"{key}_Explain", _explain(spec))
        for choice in spec.choices:
            string(f"{key}_{_ident(choice)}", choice)
        if spec.kind is Kind.BOOL:
            continue
        pres = ET.SubElement(presentations, q + "presentation", id=key)
        if spec.kind is Kind.INT:
            ET.SubElement(
                pres, q + "decimalTextBox", refId=key, defaultValue=str(spec.default)
            ).text = spec.title
        elif spec.kind is Kind.STR:
            box = ET.SubElement(pres, q + "textBox", refId=key)
            ET.SubElement(box, q + "label").text = spec.title
            if spec.default:
                ET.SubElement(box, q + "defaultValue").text = str(spec.default)
        elif spec.kind is Kind.ENUM:
            index = spec.choices.index(spec.default)
            ET.SubElement(
                pres, q + "dropdownList", refId=key, noSort="true", defaultItem=str(index)
            ).text = spec.title
        else:
            ET.SubElement(pres, q + "multiTextBox", refId=key).text = spec.title
    return _xml(root)


def _reg_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_reg() -> bytes:
    """A ``.reg`` file setting the example values under the policy key (for test rigs).

    UTF-16LE with a BOM and CRLF line ends, as ``regedit`` writes version 5.00 files.
    Production deployments should use Group Policy or Intune with the ADMX instead.
    """
    lines = [
        "Windows Registry Editor Version 5.00",
        "",
        "; Example managed settings for Rustronaut Client (generated; see docs/admin-guide.md).",
        "; Import with: reg import rustronaut-example.reg   (as administrator)",
        "",
        f"[HKEY_LOCAL_MACHINE\\{POLICY_KEY}]",
    ]
    for key, value in example_values().items():
        kind = SPECS[key].kind
        if kind in (Kind.BOOL, Kind.INT):
            lines.append(f'"{key}"=dword:{int(value):08x}')
        elif kind is Kind.STR_LIST:
            raw = "".join(f"{item}\0" for item in value) + "\0"
            data = ",".join(f"{b:02x}" for b in raw.encode("utf-16-le"))
            lines.append(f'"{key}"=hex(7):{data}')
        else:
            lines.append(f'"{key}"={_reg_string(value)}')
    return ("\r\n".join(lines) + "\r\n").encode("utf-16")


def mobileconfig() -> dict[str, Any]:
    """The macOS configuration profile (a dict ready for ``plistlib``) with the examples."""
    inner: dict[str, Any] = {
        "PayloadType": DOMAIN,
        "PayloadIdentifier": f"{DOMAIN}.settings",
        "PayloadUUID": str(uuid.uuid5(_UUID_NS, f"{DOMAIN}.settings")).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": "Rustronaut Client settings",
        **example_values(),
    }
    return {
        "PayloadContent": [inner],
        "PayloadDescription": (
            "Managed settings for Rustronaut Client. Edit the values (and remove keys you "
            "do not want to enforce) before deploying; every key present is locked."
        ),
        "PayloadDisplayName": "Rustronaut Client",
        "PayloadIdentifier": f"{DOMAIN}.profile",
        "PayloadOrganization": "Example Corp",
        "PayloadRemovalDisallowed": False,
        "PayloadScope": "System",
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(_UUID_NS, f"{DOMAIN}.profile")).upper(),
        "PayloadVersion": 1,
    }


def _md_value(spec: SettingSpec, value: Any) -> str:
    return f"`{json.dumps(spec.to_json(value))}`"


def admin_guide_table() -> str:
    """The Markdown reference of every key, grouped by category (generated section)."""
    type_names = {
        Kind.BOOL: "boolean",
        Kind.INT: "integer",
        Kind.STR: "string",
        Kind.ENUM: "string (choice)",
        Kind.STR_LIST: "list of strings",
    }
    out: list[str] = []
    for category in _categories():
        out += [f"### {category}", ""]
        for key, spec in SPECS.items():
            if spec.category != category:
                continue
            out.append(f"#### `{key}` — {spec.title}")
            out.append("")
            out.append(spec.description)
            out.append("")
            kind = type_names[spec.kind]
            if spec.kind is Kind.INT:
                kind += f", {spec.minimum}–{spec.maximum}"
            if spec.kind is Kind.ENUM:
                kind += ": " + ", ".join(f"`{c}`" for c in spec.choices)
            if spec.check is not None:
                kind += f"; {spec.expected()}"
            out.append(f"- Type: {kind}")
            out.append(f"- Default: {_md_value(spec, spec.default)}")
            out.append(f"- Windows: `{spec.key}` as {_REG_TYPE[spec.kind]}")
            if spec.example is not None:
                out.append(f"- Example: {_md_value(spec, spec.example)}")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference(cli_parser: argparse.ArgumentParser) -> str:
    """Markdown with the ``--help`` of every command and subcommand of ``cli_parser``.

    The caller passes the real ``rustronaut`` parser (``core.cli.main.build_parser()``):
    the CLI is a layer above settings, so this module must not import it.
    """
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "90"  # argparse wraps to the terminal width; fix it
    try:
        out: list[str] = []

        def walk(parser: argparse.ArgumentParser, depth: int) -> None:
            for sub in _subcommands(parser).values():
                out.append(f"{'#' * depth} `{sub.prog}`")
                out.append("")
                out.append("```text")
                out.append(sub.format_help().rstrip())
                out.append("```")
                out.append("")
                walk(sub, depth + 1)

        walk(cli_parser, 3)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(out).rstrip("\n") + "\n"


def _splice(document: str, name: str, begin: str, end_marker: str, body: str) -> str:
    """``document`` with its generated section replaced; raises ``ValueError`` if absent.

    The begin marker is found by its stable part (up to the parenthesised command) and
    rewritten whole, so a document whose marker names an older command still splices.
    """
    stable = begin.split(" (", 1)[0]
    start = document.find(stable)
    close = document.find("-->", start)
    end = document.find(end_marker)
    if start < 0 or close < 0 or end < close:
        raise ValueError(f"{name} lacks the markers {begin!r} … {end_marker!r}")
    head = document[:start] + begin
    return f"{head}\n\n{body}\n{document[end:]}"


def render_all(root: Path, cli_parser: argparse.ArgumentParser) -> Mapping[str, bytes]:
    """Every generated file (path relative to ``root`` → content).

    Reads only the two documents it splices into; ``cli_parser`` is the ``rustronaut``
    parser whose help goes into the reference (see :func:`cli_reference`).
    """
    guide = (root / ADMIN_GUIDE).read_text(encoding="utf-8")
    reference = (root / REFERENCE).read_text(encoding="utf-8")
    return {
        SCHEMA_PATH: (json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n").encode(),
        EXAMPLE_PATH: (json.dumps(example_values(), indent=2) + "\n").encode(),
        ADMX_PATH: render_admx().encode("utf-8"),
        ADML_PATH: render_adml().encode("utf-8"),
        REG_PATH: render_reg(),
        MOBILECONFIG_PATH: plistlib.dumps(mobileconfig(), fmt=plistlib.FMT_XML, sort_keys=True),
        ADMIN_GUIDE: _splice(guide, ADMIN_GUIDE, DOC_BEGIN, DOC_END, admin_guide_table()).encode(
            "utf-8"
        ),
        REFERENCE: _splice(
            reference, REFERENCE, REF_BEGIN, REF_END, cli_reference(cli_parser)
        ).encode("utf-8"),
    }


def main(argv: list[str] | None = None, *, cli_parser: argparse.ArgumentParser) -> int:
    """Write (or with ``--check`` verify) the generated files; returns the exit code.

    ``cli_parser`` is the ``rustronaut`` parser, passed in by ``scripts/gen_templates.py``.
    """
    parser = argparse.ArgumentParser(prog=COMMAND)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for rel, content in render_all(args.root, cli_parser).items():
        target = args.root / rel
        if target.exists() and target.read_bytes() == content:
            continue
        stale.append(rel)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            print(f"wrote {rel}")
    if args.check and stale:
        print(f"stale (run {COMMAND}): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(f"moved: run {COMMAND} (the CLI's parser is a layer above this module)")
