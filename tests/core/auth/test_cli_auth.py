"""``rustronaut login --device`` / ``whoami`` / ``logout`` as a user runs them.

The CLI runs as a real subprocess against the npm provider and the real Secret Service
(only inside the private keyring session of scripts/with-keyring.sh, so a developer's
own keyring is never touched); the test plays the user approving the code in a browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.core.auth.browser import browse
from tests.core.auth.conftest import CLIENT_ID, ROOT, NpmProvider, free_port, need

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_login_device_whoami_logout(
    tmp_path: Path, npm_provider: NpmProvider, secret_service: None
) -> None:
    need(
        bool(os.environ.get("RUSTRONAUT_IN_KEYRING_SESSION")),
        "writes the 'rustronaut' keyring entry: runs only in scripts/with-keyring.sh",
    )
    env = _env(tmp_path)
    flags = ["--issuer", npm_provider.issuer, "--client-id", CLIENT_ID]
    rc, _, err = await _cli(env, "whoami", *flags)
    assert rc == 1
    assert "Not signed in" in err

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        "login",
        "--device",
        *flags,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not any("code:" in line for line in lines):
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, f"CLI ended early: {lines}"
        lines.append(line)
    user_code = lines[-1].split("code:")[1].strip()
    uri = lines[-2].split("open ", 1)[1].strip()
    await browse(uri, fill={"user_code": user_code, "login": "carol", "password": "x"})
    out, errb = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, errb.decode()
    assert "Signed in as carol@example.test" in out.decode()

    rc, out_s, _ = await _cli(env, "whoami", *flags)
    assert rc == 0
    assert "carol@example.test" in out_s
    assert "Test User carol" in out_s  # from userinfo: the ID token does not carry it
    assert "session:         renews itself (refresh token)" in out_s
    rc, out_s, _ = await _cli(env, "whoami", "--json", *flags)
    assert json.loads(out_s)["session_renewable"] is True
    rc, err = await _cli_to_closed_reader(env, "whoami", *flags)  # whoami | head -1
    assert rc in {0, 141}, err
    assert "Traceback" not in err
    assert "BrokenPipe" not in err

    rc, out_s, _ = await _cli(env, "logout", *flags)
    assert rc == 0
    assert "revoked" in out_s
    rc, _, err = await _cli(env, "whoami", *flags)
    assert rc == 1


async def test_login_without_keyring_says_so_and_contacts_nobody(tmp_path: Path) -> None:
    env = _env(tmp_path, XDG_RUNTIME_DIR=str(tmp_path / "run"), HOME=str(tmp_path))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    (tmp_path / "run").mkdir(mode=0o700)
    # A closed port as issuer: reaching the network would fail differently.
    issuer = f"http://127.0.0.1:{free_port()}"
    rc, out, err = await _cli(env, "login", "--device", "--issuer", issuer, "--client-id", "c")
    assert rc == 3
    assert "Cannot store secrets safely" in err
    assert "Next step:" in err
    assert out == ""


async def test_login_without_issuer_explains_how_to_configure(tmp_path: Path) -> None:
    rc, _, err = await _cli(_env(tmp_path), "login")
    assert rc == 2
    assert "rustronaut config set controller_url" in err


async def test_issuer_comes_from_the_controller_when_not_set(tmp_path: Path) -> None:
    """Like the engine: no oidc_issuer setting, so the controller's discovery names it."""
    from controller.testing import run_controller

    env = _env(tmp_path, XDG_RUNTIME_DIR=str(tmp_path / "run"), HOME=str(tmp_path))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no keyring: whoami must say so, not crash
    (tmp_path / "run").mkdir(mode=0o700)
    async with run_controller() as rc:
        code, _, err = await _cli(env, "config", "set", "controller_url", rc.base_url)
        assert code == 0, err
        code, _, err = await _cli(env, "whoami")
    assert code == 3  # got past the configuration: the issuer was found
    assert "Cannot" in err


# -- issue 17 -------------------------------------------------------------------------------

#: A "browser" for BROWSER=...: records that it was opened, then plays the provider sending
#: an error back to the loopback callback, with an ESC sequence and a newline in
#: error_description, and saves the page the loopback listener answered.
_ERROR_BROWSER = """\
import sys, urllib.parse, urllib.request, pathlib
url = sys.argv[1]
out = pathlib.Path(sys.argv[0]).parent
(out / "browser-opened").write_text(url)
q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
issuer = url.split("/auth?")[0]
reply = urllib.parse.urlencode({
    "error": "server_error",
    "error_description": "boom\\x1b[2J\\x1b]8;;https://evil.example\\x07click\\nFAKE: next line",
    "state": q["state"][0],
    "iss": issuer,
})
try:
    urllib.request.urlopen(q["redirect_uri"][0] + "?" + reply, timeout=10)
except urllib.error.HTTPError as exc:
    (out / "page.html").write_bytes(exc.read())
"""


def _browser_script(tmp_path: Path) -> Path:
    script = tmp_path / "browser.py"
    script.write_text(_ERROR_BROWSER)
    launcher = tmp_path / "browser.sh"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    launcher.chmod(0o755)
    return launcher


async def test_provider_error_with_escape_sequences_is_shown_as_data(
    tmp_path: Path, npm_provider: NpmProvider, secret_service: None
) -> None:
    """The provider's error_description (ESC sequences, a newline) reaches the terminal,
    the log file and the browser page as visible escapes, never as control characters."""
    need(
        bool(os.environ.get("RUSTRONAUT_IN_KEYRING_SESSION")),
        "reads the 'rustronaut' keyring entry: runs only in scripts/with-keyring.sh",
    )
    env = _env(tmp_path, BROWSER=str(_browser_script(tmp_path)))
    flags = ["--issuer", npm_provider.issuer, "--client-id", CLIENT_ID]
    rc, _, err = await asyncio.wait_for(_cli(env, "login", *flags), 40)
    assert rc == 1, err
    assert (tmp_path / "browser-opened").exists()
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "boom\\x1b[2J\\x1b]8;;https://evil.example\\x07click\\nFAKE: next line" in err
    assert not any(line.startswith("FAKE") for line in err.splitlines())
    assert "Next step:" in err
    log = (tmp_path / "state" / "rustronaut" / "log" / "cli.log").read_text()
    assert "\x1b" not in log
    assert not any(line.startswith("FAKE") for line in log.splitlines())
    page = (tmp_path / "page.html").read_text()
    assert "\x1b" not in page
    assert "You are signed in" not in page
    assert "boom\\x1b[2J" in page


async def test_locked_keyring_stops_the_login_before_the_browser(
    tmp_path: Path, npm_provider: NpmProvider
) -> None:
    """A real gnome-keyring, locked (and no prompter to unlock it): both flows say so with
    the keyring's words and next step before any browser opens or code is shown."""
    need(
        shutil.which("dbus-run-session") is not None
        and shutil.which("gnome-keyring-daemon") is not None,
        "needs dbus-run-session and gnome-keyring-daemon (apt: dbus gnome-keyring)",
    )
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = _env(
        tmp_path,
        BROWSER=str(_browser_script(tmp_path)),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_RUNTIME_DIR=str(run),
        RUSTRONAUT_IN_KEYRING_SESSION="1",
    )
    env.pop("DISPLAY", None)  # no prompter can ask for the password
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    flags = f"--issuer {npm_provider.issuer} --client-id {CLIENT_ID}"
    lock = "import secretstorage as s; s.get_default_collection(s.dbus_init()).lock()"
    script = (
        "echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; "
        f'"$0" -c "{lock}" || exit 99; '
        f'"$0" -m core.cli.main login {flags}; echo "rc=$?"; '
        f'"$0" -m core.cli.main login --device {flags}; echo "rc=$?"'
    )
    proc = await asyncio.create_subprocess_exec(
        "dbus-run-session",
        "--",
        "bash",
        "-c",
        script,
        sys.executable,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_b, err_b = await asyncio.wait_for(proc.communicate(), 40)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 0, err
    assert out.count("rc=3") == 2, (out, err)
    assert not (tmp_path / "browser-opened").exists()
    assert "Opening your browser" not in out
    assert "enter the code" not in out
    assert err.count("the keyring is locked") == 2, err
    assert err.count("Next step: Unlock your keyring") == 2, err


async def _cli_to_closed_reader(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``rustronaut ARGS | head -1`` with the reader gone before the first line."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader closed early
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.cli.main",
        *args,
        env=env,
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(write_end)
    _, err_b = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err_b.decode()


@pytest.mark.parametrize("args", [["version"], ["--help"], ["config", "show"]])
async def test_output_to_a_reader_that_went_away_ends_quietly(
    tmp_path: Path, args: list[str]
) -> None:
    rc, err = await _cli_to_closed_reader(_env(tmp_path), *args)
    assert rc in {0, 141}, err
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Broken pipe" not in err
