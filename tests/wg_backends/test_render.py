"""Renderer: exact output, known keys only, fuzzed input never yields a hook; safe files."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wg_backends.keys import PRIV, PSK, PUB
from tests.wg_backends.test_spec import good
from wg_backends.errors import SpecError
from wg_backends.render import (
    ALLOWED_KEYS,
    remove_config,
    render_wg_quick,
    render_wg_set,
    write_config,
    write_private_file,
)
from wg_backends.spec import parse_spec

pytestmark = pytest.mark.unit

EXPECTED = f"""[Interface]
PrivateKey = {PRIV}
Address = 10.77.0.2/32, fd77::2/128
DNS = 10.77.0.1
MTU = 1420

[Peer]
PublicKey = {PUB}
PresharedKey = {PSK}
Endpoint = 192.0.2.1:51820
AllowedIPs = 10.77.0.0/24, 10.78.0.0/24
PersistentKeepalive = 25
"""


def test_render_exact() -> None:
    assert render_wg_quick(parse_spec(good()).with_private_key(PRIV)) == EXPECTED


def test_render_ipv6_endpoint_in_brackets_and_minimal() -> None:
    data: dict[str, Any] = {
        "interface": "rtw1",
        "addresses": ["fd00::2/64"],
        "peers": [{"public_key": PUB, "endpoint": "[2001:db8::1]:443", "allowed_ips": ["::/0"]}],
    }
    text = render_wg_quick(parse_spec(data).with_private_key(PRIV))
    assert "Endpoint = [2001:db8::1]:443\n" in text
    assert "DNS" not in text
    assert "MTU" not in text
    assert "PresharedKey" not in text


def test_render_refuses_spec_without_private_key() -> None:
    with pytest.raises(SpecError, match="private_key"):
        render_wg_quick(parse_spec(good()))


def _keys(text: str) -> set[str]:
    return {line.split(" = ")[0] for line in text.splitlines() if " = " in line}


HOOKS = ["PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig", "Table", "FwMark"]
texts = st.text(
    alphabet=st.sampled_from("abc019./:=#[]\n\r\t \x00-_+PostUpSaveConfig"), max_size=40
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    field=st.sampled_from(
        ["interface", "addresses", "dns", "endpoint", "allowed_ips", "public_key", "mtu"]
    ),
    value=texts,
)
def test_fuzzed_fields_never_render_a_hook(field: str, value: str) -> None:
    data = good()
    peer = data["peers"][0]
    if field in {"endpoint", "public_key"}:
        peer[field] = value
    elif field == "allowed_ips":
        peer[field] = [value, "::/0"]
    elif field in {"addresses", "dns"}:
        data[field] = [value]
    else:
        data[field] = value
    try:
        text = render_wg_quick(parse_spec(data).with_private_key(PRIV))
    except SpecError:
        return
    assert _keys(text) <= ALLOWED_KEYS
    assert not any(hook in text for hook in HOOKS)
    assert text.count("[Interface]") == 1
    assert text.count("[Peer]") == 1
    assert "#" not in text
    assert "\r" not in text
    assert "\x00" not in text


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4))
def test_unknown_fields_always_refused(extra: dict[str, str]) -> None:
    data = good()
    data.update({k: v for k, v in extra.items() if k not in data})
    if len(data) == len(good()):
        return
    with pytest.raises(SpecError):
        parse_spec(data)


def test_write_config_0600_atomic_and_idempotent(tmp_path: Path) -> None:
    conf_dir = tmp_path / "wg"
    spec = parse_spec(good()).with_private_key(PRIV)
    path = write_config(spec, conf_dir)
    assert path == conf_dir / "rtw0.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(conf_dir.stat().st_mode) == 0o700
    assert path.read_text() == EXPECTED
    write_config(spec, conf_dir)
    assert sorted(p.name for p in conf_dir.iterdir()) == ["rtw0.conf"]
    remove_config(conf_dir, "rtw0")
    remove_config(conf_dir, "rtw0")
    assert list(conf_dir.iterdir()) == []


def test_write_config_refuses_loose_directory_and_writes_nothing(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(PermissionError, match="writable"):
        write_config(parse_spec(good()).with_private_key(PRIV), loose)
    assert list(loose.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to(loose)
    with pytest.raises(PermissionError):
        write_config(parse_spec(good()).with_private_key(PRIV), link)


def test_write_config_bad_spec_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        write_config(parse_spec(good()), tmp_path / "wg")
    assert not (tmp_path / "wg").exists()


def test_split_dns_spec_renders_no_global_dns_line() -> None:
    data = good()
    data["dns_suffixes"] = ["corp.example"]
    text = render_wg_quick(parse_spec(data).with_private_key(PRIV))
    assert text == EXPECTED.replace("DNS = 10.77.0.1\n", "")


def test_render_wg_set_is_wg_quick_strip_plus_live_port_and_mark() -> None:
    spec = parse_spec(good()).with_private_key(PRIV)
    text = render_wg_set(spec, listen_port=40000, fwmark=51820)
    assert text == (
        f"[Interface]\nPrivateKey = {PRIV}\nListenPort = 40000\nFwMark = 51820\n\n"
        f"[Peer]\nPublicKey = {PUB}\nPresharedKey = {PSK}\nEndpoint = 192.0.2.1:51820\n"
        "AllowedIPs = 10.77.0.0/24, 10.78.0.0/24\nPersistentKeepalive = 25\n"
    )
    bare = render_wg_set(spec)
    for key in ("ListenPort", "FwMark", "Address", "DNS", "MTU"):
        assert key not in bare
    for bad in ({"listen_port": 70000}, {"fwmark": -1}, {"fwmark": 2**32}):
        with pytest.raises(SpecError):
            render_wg_set(spec, **bad)


def test_write_private_file_refuses_paths(tmp_path: Path) -> None:
    for name in ("../x", "a/b", "", "..", "a\\b"):
        with pytest.raises(ValueError):
            write_private_file(tmp_path / "d", name, "x")
    path = write_private_file(tmp_path / "d", "f.conf", "hello\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == "hello\n"
