"""Real second local accounts for the hostile-local-user tests (root only).

:func:`second_account` makes a throwaway user with ``useradd -m`` (and removes it with
``userdel -r``); :func:`throwaway_group` a throwaway group. :func:`run_as` runs the system
Python as that user (``setpriv --reuid --regid --init-groups``) with :data:`RAW_CLIENT`,
which speaks the helper protocol with nothing but the standard library: it sends the
given requests on one connection (or on ``--connections N`` connections) and prints each
answer as one JSON line.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RAW_CLIENT", "Account", "run_as", "second_account", "throwaway_group"]

_counter = itertools.count()
SYSTEM_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Account:
    """A throwaway local user."""

    name: str
    uid: int
    gid: int


def _name(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}{next(_counter)}"


@contextlib.contextmanager
def second_account(groups: tuple[str, ...] = ()) -> Iterator[Account]:
    """A new user (home made and removed), optionally in ``groups``."""
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("needs root and useradd")
    name = _name("rtwh")
    extra = ["-G", ",".join(groups)] if groups else []
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", *extra, name], check=True,
                   capture_output=True)  # fmt: skip
    try:
        pw = pwd.getpwnam(name)
        yield Account(name, pw.pw_uid, pw.pw_gid)
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)


@contextlib.contextmanager
def throwaway_group() -> Iterator[str]:
    """A new group, removed afterwards."""
    name = _name("rtwg")
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], capture_output=True)


RAW_CLIENT = r"""
import json, socket, struct, sys
path, requests, conns = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
def recv(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return {"closed": True}
        head += chunk
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return json.loads(body)
held = []
for _ in range(conns):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as exc:
        print(json.dumps({"connect_error": exc.errno}), flush=True)
        continue
    held.append(s)
    for req in requests:
        body = json.dumps(req).encode()
        try:
            s.sendall(struct.pack(">I", len(body)) + body)
        except OSError:
            pass  # refused at once: the helper's answer is already waiting
        print(json.dumps(recv(s)), flush=True)
if "--hold" in sys.argv:
    print("HOLD", flush=True)
    sys.stdin.readline()
"""


def run_as(
    account: Account, sock: Path, requests: list[dict[str, Any]], *, connections: int = 1
) -> list[dict[str, Any]]:
    """Run :data:`RAW_CLIENT` as ``account``; its answers (one dict per line)."""
    out = subprocess.run(
        ["setpriv", "--reuid", str(account.uid), "--regid", str(account.gid), "--init-groups",
         SYSTEM_PYTHON, "-I", "-c", RAW_CLIENT, str(sock), json.dumps(requests),
         str(connections)],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def hold_as(
    account: Account, sock: Path, requests: list[dict[str, Any]]
) -> tuple[subprocess.Popen[str], list[dict[str, Any]]]:
    """Like :func:`run_as` but the connection stays open until the process's stdin closes."""
    proc = subprocess.Popen(
        ["setpriv", "--reuid", str(account.uid), "--regid", str(account.gid), "--init-groups",
         SYSTEM_PYTHON, "-I", "-c", RAW_CLIENT, str(sock), json.dumps(requests), "1", "--hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/",
    )  # fmt: skip
    assert proc.stdout is not None
    answers = []
    for line in proc.stdout:
        if line.strip() == "HOLD":
            break
        answers.append(json.loads(line))
    return proc, answers
