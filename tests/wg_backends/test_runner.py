"""The real subprocess runner: argv as data, errors carry argv, exit code and stderr."""

from __future__ import annotations

import pytest

from wg_backends.errors import CommandError
from wg_backends.runner import SAFE_PATH, SubprocessRunner

pytestmark = pytest.mark.unit


def test_success_and_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "/evil.so")
    monkeypatch.setenv("WG_QUICK_USERSPACE_IMPLEMENTATION", "wireguard-go")
    res = SubprocessRunner()(["env"])
    env = dict(line.split("=", 1) for line in res.stdout.splitlines())
    assert env["PATH"] == SAFE_PATH
    assert env["LC_ALL"] == "C"
    assert env["WG_QUICK_USERSPACE_IMPLEMENTATION"] == "wireguard-go"
    assert "LD_PRELOAD" not in env
    assert res.argv == ("env",)


def test_argv_is_not_a_shell() -> None:
    res = SubprocessRunner()(["echo", "a; rm -rf /tmp/x", "$(id)"])
    assert res.stdout == "a; rm -rf /tmp/x $(id)\n"


def test_failure_carries_argv_code_stderr() -> None:
    with pytest.raises(CommandError) as err:
        SubprocessRunner()(["sh", "-c", "echo boom >&2; exit 3"])
    assert err.value.argv == ("sh", "-c", "echo boom >&2; exit 3")
    assert err.value.returncode == 3
    assert err.value.stderr.strip() == "boom"
    res = SubprocessRunner()(["sh", "-c", "exit 4"], check=False)
    assert res.returncode == 4


def test_missing_binary_and_timeout() -> None:
    with pytest.raises(CommandError) as err:
        SubprocessRunner()(["rtw-no-such-tool"])
    assert err.value.returncode == -1
    with pytest.raises(CommandError, match="timed out"):
        SubprocessRunner()(["sleep", "5"], timeout=0.2)
