"""The relay as a real process (``python -m controller.relay``, ``rustronaut-controller
relay``): start-up line, SIGTERM → ERROR ``shutdown`` and exit 0, logs without secrets;
and the config file's errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controller.cli import main as cli_main
from controller.relay.__main__ import main as relay_main
from controller.relay.config import ConfigError, load_config, read_token
from controller.relay.directory import parse_devices
from tests.controller.relay.conftest import Bed
from tests.controller.relay.kit import TOKEN, Client
from wg_backends.relay import frames

ROOT = Path(__file__).resolve().parents[3]


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], int, list[str]]:
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    port = 0
    end = time.monotonic() + 30
    for line in proc.stderr:
        lines.append(line)
        m = re.fullmatch(r"relay relay1 listening on 127\.0\.0\.1:(\d+)", line.strip())
        if m:
            port = int(m.group(1))
            break
        assert time.monotonic() < end
    assert port, "".join(lines)

    def drain() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr)

    threading.Thread(target=drain, daemon=True).start()
    return proc, port, lines


@pytest.mark.integration
@pytest.mark.parametrize("entry", ["module", "cli"])
def test_sigterm_sends_shutdown_and_exits_0(bed: Bed, entry: str) -> None:
    config = bed.config()
    stats = bed.dir / "stats.json"
    argv = (
        [sys.executable, "-m", "controller.relay"]
        if entry == "module"
        else [sys.executable, "-m", "controller.cli", "relay"]
    )
    dev = bed.device("dev-1")
    proc, port, lines = _start([*argv, "--config", str(config), "--stats-file", str(stats)])
    try:
        c = Client(("127.0.0.1", port), bed.server_ca, dev)
        assert c.hello(bed.gateway.endpoint)["relay"] == "relay1"
        c.data(b"ping through a real process")
        assert c.recv() == (frames.DATA, b"ping through a real process")
        proc.send_signal(signal.SIGTERM)
        c.expect_error("shutdown")
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.1)
    log = "".join(lines)
    assert "relay stream open: device=dev-1" in log
    assert re.search(r"relay stream closed: device=dev-1 .*reason=shutdown .*up=27 down=27", log)
    assert TOKEN not in log
    assert "HTTP Request" not in log  # no line per directory poll
    assert dev.key_file.read_text().splitlines()[1] not in log
    counters = json.loads(stats.read_text())
    assert counters["bytes_to_gateway"] == counters["bytes_from_gateway"] == 27
    assert counters["streams"] == 0


def test_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "relay.json"
    bad.write_text('{"name": "relay1"}')
    assert relay_main(["--config", str(bad)]) == 2
    assert "invalid relay config" in capsys.readouterr().err
    assert cli_main(["relay", "--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read relay config" in capsys.readouterr().err


BAD: dict[str, tuple[dict[str, Any], str]] = {
    "unknown key": ({"gatways": ["1.2.3.4:5"]}, "gatways"),
    "listen not host:port": ({"listen": "relay"}, "listen"),
    "listen a name": ({"listen": "localhost:443"}, "listen"),
    "gateway garbage": ({"gateways": ["not an endpoint"]}, "gateways"),
    "no gateway": ({"gateways": []}, "gateways"),
    "controller not http": ({"controller_url": "ftp://controller"}, "controller_url"),
    "zero streams": ({"max_streams": 0}, "max_streams"),
    "tiny queue": ({"queue_bytes": 100}, "queue_bytes"),
    "polling too fast": ({"poll_interval_s": 0.001}, "poll_interval_s"),
    "bad name": ({"name": "relay one"}, "name"),
    "missing cert": ({"cert_file": "nope.pem"}, "cert_file"),
    "missing token": ({"token_file": "nope"}, "token_file"),
    "a string for a number": ({"max_streams": "10"}, "max_streams"),
}


@pytest.mark.parametrize("change", list(BAD.values()), ids=list(BAD))
def test_config_errors_name_the_key(bed: Bed, change: tuple[dict[str, Any], str]) -> None:
    overrides, key = change
    with pytest.raises(ConfigError, match=key):
        load_config(bed.config(**overrides))


def test_config_paths_are_relative_to_the_file(bed: Bed) -> None:
    cfg = load_config(bed.config())
    assert Path(cfg.token_file) == bed.dir / "token"
    assert read_token(cfg) == TOKEN


@pytest.mark.parametrize("content", ["", "two words", "x" * 5000], ids=["empty", "space", "huge"])
def test_bad_token_files(bed: Bed, content: str) -> None:
    cfg = load_config(bed.config())
    Path(cfg.token_file).write_text(content)
    with pytest.raises(ConfigError, match="token_file"):
        read_token(cfg)


def test_device_list_parsing_leaves_out_malformed_entries() -> None:
    good = "A" * 43  # 32 zero bytes, b64url without padding
    devices, bad = parse_devices(
        json.dumps(
            {
                "devices": {
                    "ok": good,
                    "padded": good + "=",
                    "short": "AAAA",
                    "not-b64": "!" * 43,
                    "x" * 300: good,
                }
            }
        ).encode()
    )
    assert devices == {"ok": bytes(32), "padded": bytes(32)}
    assert bad == 3
    for body in (b"[]", b"{}", b'{"devices": []}', b'{"devices": {"a": 1}}', b"not json"):
        with pytest.raises(ValueError):
            parse_devices(body)
