"""Relay configuration (issue 21): ``relays`` and ``relay_token_file`` are checked when the
controller config loads — a bad relay fails at start, never at a device's bundle fetch —
and ``rustronaut-controller init --relay`` writes a working setup."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from controller.cli import main
from controller.config import (
    ConfigError,
    hash_admin_token,
    load_config,
    read_relay_token,
)
from controller.relayca import CA_CERT_FILE, CA_KEY_FILE

GW1 = "10.241.0.1:51820"
GW2 = "[fd00::1]:51820"
WG_KEY = base64.b64encode(b"\x01" * 32).decode()
PIN = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
ADMIN = secrets.token_urlsafe(32)


def _write(tmp: Path, *, token: str | None = None, mode: int = 0o600, **fields: Any) -> Path:
    """A config with two gateways and one relay, ``fields`` overriding; the token file
    beside it (relative path) unless ``token`` is ""."""
    data: dict[str, Any] = {
        "admin_token_sha256": hash_admin_token(ADMIN),
        "keys_dir": "keys",
        "gateway": {"public_key": WG_KEY, "endpoint": GW1},
        "gateways": [
            {"public_key": base64.b64encode(b"\x02" * 32).decode(), "endpoint": GW2},
        ],
        "relays": [{"name": "relay1", "endpoint": "relay1.example:443"}],
        "relay_token_file": "relay-token",
    }
    data.update(fields)
    if token != "":
        file = tmp / "relay-token"
        file.write_text((token or secrets.token_urlsafe(32)) + "\n")
        file.chmod(mode)
    path = tmp / "controller.json"
    path.write_text(json.dumps(data))
    return path


def test_valid_relays_load(tmp_path: Path) -> None:
    relays = [
        {"name": "relay1", "endpoint": "relay1.example:443"},
        {
            "name": "relay-2",
            "endpoint": "192.0.2.7:8443",
            "server_name": "relay2.example",
            "spki": [PIN],
            "gateways": ["[FD00:0::1]:51820"],  # the same endpoint, spelled differently
        },
    ]
    cfg = load_config(_write(tmp_path, token="t" * 40, relays=relays))
    assert [r.name for r in cfg.relays] == ["relay1", "relay-2"]
    assert cfg.relay_token_file == str(tmp_path / "relay-token")  # resolved beside it
    assert read_relay_token(cfg) == "t" * 40
    assert cfg.relays[1].spec().tls_name() == "relay2.example"
    assert cfg.relays[0].serves(GW1)
    assert cfg.relays[0].serves(GW2)
    assert not cfg.relays[1].serves(GW1)
    assert cfg.relays[1].serves(GW2)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"relays": [{"name": "r", "endpoint": "r.example:443", "gateways": ["10.9.9.9:1"]}]},
            "relay r serves gateway '10.9.9.9:1', which is not the endpoint of a configured",
        ),
        (
            {
                "relays": [
                    {"name": "r", "endpoint": "a.example:443"},
                    {"name": "r", "endpoint": "b.example:443"},
                ]
            },
            "two relays are named 'r'",
        ),
        ({"relay_token_file": None}, "relays are configured but no relay token file"),
        (
            {"relays": [{"name": "r", "endpoint": "r.example:443", "spki": ["not-a-pin"]}]},
            "relays.spki: 'not-a-pin' is not a base64 SHA-256 digest",
        ),
        (
            {"relays": [{"name": "r", "endpoint": "192.0.2.1:443"}]},
            "give the name its certificate carries",
        ),
        (
            {"relays": [{"name": "r", "endpoint": "r.example:99999"}]},
            "port 99999 outside 1-65535",
        ),
        ({"relays": [{"name": "Relay_1", "endpoint": "r.example:443"}]}, "relays[0].name"),
        (
            {"relays": [{"name": f"r{i}", "endpoint": f"r{i}.example:443"} for i in range(9)]},
            "Expected `array` of length <= 8 - at `$.relays`",
        ),
        (
            {"relays": [{"name": "r", "endpoint": "r.example:443", "bogus": 1}]},
            "unknown field `bogus`",
        ),
    ],
)
def test_bad_relay_config_is_refused_with_words(
    tmp_path: Path, fields: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, **fields))
    assert words in str(err.value)


def test_unsafe_or_missing_token_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, token="", relay_token_file="nowhere")
    with pytest.raises(ConfigError, match=r"relay_token_file: cannot read .*nowhere"):
        load_config(path)
    for mode in (0o640, 0o604, 0o660):
        path = _write(tmp_path, mode=mode)
        with pytest.raises(ConfigError, match="accessible to its group or others"):
            load_config(path)
    with pytest.raises(ConfigError, match="fewer than 32"):
        load_config(_write(tmp_path, token="short-token"))
    with pytest.raises(ConfigError, match="spaces or control characters"):
        load_config(_write(tmp_path, token="a" * 20 + " " + "b" * 20))
    (tmp_path / "relay-token").unlink()
    (tmp_path / "relay-token").write_bytes(b"\xff" * 40)
    (tmp_path / "relay-token").chmod(0o600)
    with pytest.raises(ConfigError, match="not ASCII"):
        load_config(_write(tmp_path, token=""))
    # A relay must never hold the admin credential.
    with pytest.raises(ConfigError, match="must not be the admin token"):
        load_config(_write(tmp_path, token=ADMIN))


def test_init_with_relays_writes_a_working_setup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path = tmp_path / "controller.json"
    args = ["init", "--config", str(cfg_path), "--dev-oidc"]
    args += ["--relay", "relay1=relay1.example:443", "--relay", "relay2=192.0.2.7:8443"]
    args += ["--relay-server-name", "relay2=relay2.example"]
    assert main(args) == 0
    out = capsys.readouterr().out
    cfg = load_config(cfg_path)  # loads: the token file is safe and long enough
    assert [(r.name, r.endpoint, r.server_name) for r in cfg.relays] == [
        ("relay1", "relay1.example:443", None),
        ("relay2", "192.0.2.7:8443", "relay2.example"),
    ]
    token_path = tmp_path / "relay-token"
    assert cfg.relay_token_file == str(token_path)
    assert token_path.stat().st_mode & 0o777 == 0o600
    token = read_relay_token(cfg)
    assert token is not None
    assert len(token) >= 43
    assert token not in out  # only its path is printed
    assert token not in cfg_path.read_text()
    ca = tmp_path / "keys" / CA_CERT_FILE
    assert (tmp_path / "keys" / CA_KEY_FILE).stat().st_mode & 0o077 == 0
    x509.load_pem_x509_certificate(ca.read_bytes())
    assert f"relay CA (relays' client_ca_file): {ca}" in out
    assert f"relay token (relays' token_file, keep secret): {token_path}" in out
    # One ready relay config per relay, pointing at the CA, the token and the controller.
    examples = [json.loads(block) for block in _json_blocks(out)]
    assert [e["name"] for e in examples] == ["relay1", "relay2"]
    assert examples[1]["listen"] == "0.0.0.0:8443"
    assert examples[0]["client_ca_file"] == str(ca)
    assert examples[0]["token_file"] == str(token_path)
    assert examples[0]["controller_url"] == cfg.effective_public_url
    # --force re-initialises with a new token.
    assert main([*args, "--force"]) == 0
    assert read_relay_token(load_config(cfg_path)) != token


def _json_blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if line == "{":
            current = [line]
        elif current:
            current.append(line)
            if line == "}":
                blocks.append("\n".join(current))
                current = []
    return blocks


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--relay", "relay1"], "expected NAME=HOST:PORT"),
        (["--relay", "r=192.0.2.7:443"], "give the name its certificate carries"),
        (["--relay", "r=r.example:443", "--relay-server-name", "x=h.example"], "names no"),
        (["--relay", "BAD=r.example:443"], "name"),
        (["--relay", "r=a.example:1", "--relay", "r=b.example:2"], "two relays are named"),
    ],
)
def test_init_refuses_bad_relays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    cfg_path = tmp_path / "controller.json"
    assert main(["init", "--config", str(cfg_path), *extra]) == 2
    assert words in capsys.readouterr().err
    assert not cfg_path.exists()
    assert not (tmp_path / "relay-token").exists()


def test_init_without_relays_writes_no_token(tmp_path: Path) -> None:
    cfg_path = tmp_path / "controller.json"
    assert main(["init", "--config", str(cfg_path)]) == 0
    cfg = load_config(cfg_path)
    assert cfg.relays == ()
    assert cfg.relay_token_file is None
    assert not (tmp_path / "relay-token").exists()
