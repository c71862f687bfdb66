"""Which proxy reaches the controller: environment, OS settings, PAC — resolved per URL.

Order, as browsers and curl do it: a loopback controller is always direct; then the
``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` variables (either case) with ``NO_PROXY``;
then the OS settings, read through an injected command runner (argv as data):

- Linux (GNOME and the desktops that honour its keys): ``gsettings get
  org.gnome.system.proxy mode`` → ``none`` | ``manual`` (``org.gnome.system.proxy.https``
  / ``.http`` ``host`` and ``port``, ``ignore-hosts``) | ``auto`` (``autoconfig-url``).
- Windows: ``reg query "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet
  Settings"`` → ``ProxyEnable``/``ProxyServer``/``ProxyOverride``/``AutoConfigURL``.
- macOS: ``scutil --proxy`` → ``HTTPSEnable``/``HTTPSProxy``/``HTTPSPort``,
  ``ProxyAutoConfigEnable``/``ProxyAutoConfigURLString``, ``ExceptionsList``.

A PAC file is fetched directly (capped, short timeout; ``file://`` read from disk) and
evaluated by **pypac** (its ``PACFile`` runs ``FindProxyForURL`` in the dukpy
JavaScript engine, with the standard helper functions); only the scheme and host of
the controller URL are given to it, as browsers do for https. We never hand-roll PAC
evaluation: without pypac a PAC setting is reported as not evaluated and the
connection goes direct. The first ``PROXY``/``HTTP``/``HTTPS`` entry of the PAC answer
is used (``SOCKS`` entries are skipped: httpx needs the optional socksio for them);
``DIRECT`` means no proxy.

Resolution never raises: an unreadable setting or PAC file means "direct", with the
reason in ``ProxyChoice.source`` so the error shown when the controller cannot be
reached can say where the proxy came from.
"""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

import httpx

__all__ = [
    "GSETTINGS",
    "MAX_PAC_BYTES",
    "WINDOWS_INTERNET_SETTINGS",
    "ProxyChoice",
    "ProxyRunner",
    "SystemProxy",
    "evaluate_pac",
    "parse_pac_answer",
    "parse_reg_query",
    "parse_scutil_proxy",
    "redact_proxy_url",
    "resolve_proxy",
    "system_proxy",
]

_log = logging.getLogger(__name__)

MAX_PAC_BYTES = 1024 * 1024
GSETTINGS = "gsettings"
WINDOWS_INTERNET_SETTINGS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
_TOOL_TIMEOUT_S = 5.0


class _Result(Protocol):
    @property
    def returncode(self) -> int: ...
    @property
    def stdout(self) -> str: ...


class ProxyRunner(Protocol):
    """The command-runner seam (``core.posture.runner.CommandRunner`` fits)."""

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> _Result:
        """Run ``argv``; raise an exception when the tool is missing or times out."""
        ...


@dataclass(frozen=True, slots=True)
class ProxyChoice:
    """The proxy for one URL: ``url`` (None = direct) and where that came from."""

    url: str | None
    source: str


@dataclass(frozen=True, slots=True)
class SystemProxy:
    """The OS proxy settings, before they are applied to a URL.

    ``https``/``http`` are ``host:port``; ``bypass`` holds host patterns, CIDRs and
    ``<local>`` (Windows: names without a dot).
    """

    mode: Literal["none", "manual", "auto"]
    source: str
    https: str | None = None
    http: str | None = None
    pac_url: str | None = None
    bypass: tuple[str, ...] = field(default=())


def redact_proxy_url(url: str) -> str:
    """``url`` without its credentials (for messages and logs)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"***@{host}{port}").geturl()


# --------------------------------------------------------------------- OS settings
def _gvariant(text: str) -> object:
    """A ``gsettings get`` value (GVariant text: 'str', 42, ['a', 'b'], @as [])."""
    text = text.strip()
    text = re.sub(r"^@\w+\s+", "", text)  # type annotation of an empty value
    text = re.sub(r"^u?int\d+\s+", "", text)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


async def _gsettings(runner: ProxyRunner, schema: str, key: str) -> object:
    result = await runner.run([GSETTINGS, "get", schema, key], timeout_s=_TOOL_TIMEOUT_S)
    if result.returncode != 0:
        raise LookupError(f"gsettings get {schema} {key} failed")
    return _gvariant(result.stdout)


async def _linux(runner: ProxyRunner) -> SystemProxy:
    schema = "org.gnome.system.proxy"
    mode = await _gsettings(runner, schema, "mode")
    source = "GNOME proxy settings"
    if mode == "auto":
        url = await _gsettings(runner, schema, "autoconfig-url")
        return SystemProxy("auto", f"{source} (automatic)", pac_url=str(url) or None)
    if mode != "manual":
        return SystemProxy("none", source)
    ignore = await _gsettings(runner, schema, "ignore-hosts")
    bypass = tuple(str(h) for h in ignore) if isinstance(ignore, list) else ()
    found: dict[str, str | None] = {}
    for kind in ("https", "http"):
        host = await _gsettings(runner, f"{schema}.{kind}", "host")
        port = await _gsettings(runner, f"{schema}.{kind}", "port")
        found[kind] = f"{host}:{port}" if host and isinstance(port, int) and port else None
    return SystemProxy(
        "manual", f"{source} (manual)", https=found["https"], http=found["http"], bypass=bypass
    )


def parse_reg_query(text: str) -> SystemProxy:
    """Parse ``reg query`` of ``WINDOWS_INTERNET_SETTINGS`` (see the module docstring)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 2)
        if len(parts) == 3 and parts[1].startswith("REG_"):
            values[parts[0].lower()] = parts[2].strip()
    source = "Windows Internet settings"
    pac = values.get("autoconfigurl")
    if pac:
        return SystemProxy("auto", f"{source} (automatic configuration script)", pac_url=pac)
    enabled = values.get("proxyenable", "0x0").lower() not in ("0x0", "0")
    server = values.get("proxyserver", "")
    if not enabled or not server:
        return SystemProxy("none", source)
    bypass = tuple(p.strip() for p in values.get("proxyoverride", "").split(";") if p.strip())
    if "=" not in server:
        return SystemProxy("manual", source, https=server, http=server, bypass=bypass)
    # Per-protocol form: "http=host:port;https=host:port;ftp=..."
    per = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (p.partition("=") for p in server.split(";"))
        if v.strip()
    )
    return SystemProxy(
        "manual", source, https=per.get("https"), http=per.get("http"), bypass=bypass
    )


def parse_scutil_proxy(text: str) -> SystemProxy:
    """Parse ``scutil --proxy`` (see the module docstring)."""
    values: dict[str, str] = {}
    exceptions: list[str] = []
    in_exceptions = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ExceptionsList"):
            in_exceptions = True
            continue
        if in_exceptions:
            if line == "}":
                in_exceptions = False
            elif " : " in line:
                exceptions.append(line.split(" : ", 1)[1].strip())
            continue
        key, sep, value = line.partition(" : ")
        if sep:
            values[key.strip()] = value.strip()
    source = "macOS network proxy settings"
    if values.get("ProxyAutoConfigEnable") == "1" and values.get("ProxyAutoConfigURLString"):
        return SystemProxy(
            "auto", f"{source} (automatic)", pac_url=values["ProxyAutoConfigURLString"]
        )

    def pick(prefix: str) -> str | None:
        if values.get(f"{prefix}Enable") != "1" or not values.get(f"{prefix}Proxy"):
            return None
        return f"{values[f'{prefix}Proxy']}:{values.get(f'{prefix}Port', '80')}"

    https, http = pick("HTTPS"), pick("HTTP")
    if https is None and http is None:
        return SystemProxy("none", source)
    return SystemProxy("manual", source, https=https, http=http, bypass=tuple(exceptions))


async def system_proxy(runner: ProxyRunner, *, platform: str = sys.platform) -> SystemProxy:
    """Read the OS proxy settings. Never raises: unreadable settings mean "none"."""
    try:
        if platform.startswith("linux"):
            return await _linux(runner)
        if platform == "win32":
            result = await runner.run(
                ["reg", "query", WINDOWS_INTERNET_SETTINGS], timeout_s=_TOOL_TIMEOUT_S
            )
            return parse_reg_query(result.stdout) if result.returncode == 0 else _none()
        if platform == "darwin":
            result = await runner.run(["scutil", "--proxy"], timeout_s=_TOOL_TIMEOUT_S)
            return parse_scutil_proxy(result.stdout) if result.returncode == 0 else _none()
    except Exception as exc:  # a missing tool or schema is the common "no proxy" case
        _log.debug("no system proxy settings: %s", exc)
    return _none()


def _none() -> SystemProxy:
    return SystemProxy("none", "no system proxy settings")


# --------------------------------------------------------------------- applying them
def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bypassed(host: str, patterns: Sequence[str]) -> bool:
    host = host.lower().strip("[]")
    for raw in patterns:
        pattern = raw.strip().lower()
        if not pattern:
            continue
        if pattern == "<local>":
            if "." not in host:
                return True
            continue
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(pattern, strict=False):
                return True
            continue
        except ValueError:
            pass
        if fnmatch.fnmatch(host, pattern) or host == pattern.lstrip("*."):
            return True
        if pattern.startswith(".") and host.endswith(pattern):
            return True
    return False


def _env_get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name.lower()) or env.get(name.upper()) or None


def _as_proxy_url(value: str) -> str:
    return value if "://" in value else f"http://{value}"


def parse_pac_answer(answer: str) -> str | None:
    """The proxy URL of a ``FindProxyForURL`` answer ("PROXY h:p; DIRECT"), None = direct.

    Takes the first entry httpx can use; ``SOCKS`` entries are skipped. Raises
    ``ValueError`` when no entry is usable.
    """
    for entry in answer.split(";"):
        words = entry.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            return None
        if kind in ("PROXY", "HTTP") and len(words) == 2:
            return f"http://{words[1]}"
        if kind == "HTTPS" and len(words) == 2:
            return f"https://{words[1]}"
    raise ValueError(f"no usable entry in the PAC answer {answer[:200]!r}")


def evaluate_pac(script: str, url: str) -> str:
    """Run the PAC ``script``'s ``FindProxyForURL`` for ``url`` (scheme and host only).

    Uses pypac (dukpy). Raises ``ImportError`` without pypac and ``ValueError`` for a
    script that does not load or run. Blocking (the script may resolve names): call it
    in a worker thread.
    """
    from pypac.parser import PACFile  # type: ignore[import-untyped,import-not-found,unused-ignore]

    parts = urlsplit(url)
    host = parts.hostname or ""
    stripped = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    try:
        return str(PACFile(script).find_proxy_for_url(stripped, host))
    except Exception as exc:
        raise ValueError(f"the PAC script failed: {exc}") from exc


async def _fetch_pac(pac_url: str, transport: httpx.AsyncBaseTransport | None) -> str:
    if pac_url.startswith("file://"):
        path = Path(urlsplit(pac_url).path)
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > MAX_PAC_BYTES:
            raise ValueError(f"PAC file over {MAX_PAC_BYTES} bytes")
        return data.decode("utf-8", "replace")
    async with (
        httpx.AsyncClient(
            transport=transport, trust_env=False, timeout=5.0, follow_redirects=True
        ) as http,
        http.stream("GET", pac_url) as response,
    ):
        if response.status_code != 200:
            raise ValueError(f"PAC file answered {response.status_code}")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_PAC_BYTES:
                raise ValueError(f"PAC file over {MAX_PAC_BYTES} bytes")
    return body.decode("utf-8", "replace")


async def _from_pac(
    url: str, pac_url: str, source: str, transport: httpx.AsyncBaseTransport | None
) -> ProxyChoice:
    where = f"PAC file {pac_url} from {source}"
    try:
        script = await _fetch_pac(pac_url, transport)
        answer = await asyncio.to_thread(evaluate_pac, script, url)
        chosen = parse_pac_answer(answer)
    except ImportError:
        _log.warning("PAC file %s not evaluated: pypac is not installed", pac_url)
        return ProxyChoice(None, f"{where} not evaluated (pypac is not installed); direct")
    except (OSError, ValueError, httpx.HTTPError) as exc:
        _log.warning("PAC file %s unusable, going direct: %s", pac_url, exc)
        return ProxyChoice(None, f"{where} unusable ({exc}); direct")
    return ProxyChoice(chosen, where)


async def resolve_proxy(
    url: str,
    *,
    env: Mapping[str, str] | None = None,
    runner: ProxyRunner | None = None,
    platform: str = sys.platform,
    pac_transport: httpx.AsyncBaseTransport | None = None,
) -> ProxyChoice:
    """The proxy to use for ``url`` (see the module docstring for the order).

    ``env`` defaults to ``os.environ``; ``runner`` to a ``SubprocessRunner`` (created
    lazily; pass one in tests with captured outputs); ``pac_transport`` replaces the
    network for fetching the PAC file. Never raises. Call from the event loop.
    """
    env = os.environ if env is None else env
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _is_loopback(host):
        return ProxyChoice(None, "loopback controller: direct")
    names = ("https_proxy", "all_proxy") if parts.scheme == "https" else ("http_proxy", "all_proxy")
    for name in names:
        value = _env_get(env, name)
        if value:
            no_proxy = _env_get(env, "no_proxy") or ""
            if no_proxy and proxy_bypass_environment(host, {"no": no_proxy}):
                return ProxyChoice(None, "NO_PROXY environment variable: direct")
            return ProxyChoice(_as_proxy_url(value), f"{name.upper()} environment variable")
    if runner is None:
        from core.posture.runner import SubprocessRunner

        runner = SubprocessRunner()
    system = await system_proxy(runner, platform=platform)
    if system.mode == "auto" and system.pac_url:
        return await _from_pac(url, system.pac_url, system.source, pac_transport)
    if system.mode == "manual":
        if _bypassed(host, system.bypass):
            return ProxyChoice(None, f"{system.source}: {host} is excepted; direct")
        server = system.https if parts.scheme == "https" else system.http
        if server:
            return ProxyChoice(_as_proxy_url(server), system.source)
    return ProxyChoice(None, f"{system.source}: direct")
