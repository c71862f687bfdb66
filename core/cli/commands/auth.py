"""``rustronaut login [--device]``, ``rustronaut logout [--reason]``, ``rustronaut whoami``.

When the agent runs (docs/local-api.md), ``login`` and ``logout`` go through it, so every
front end sees the change at once: ``login`` signs the running session in (the browser
opens here, or the device code is printed here) and ``logout`` signs it out, with a
break-glass ``--reason`` under managed always-on. When no agent runs they act on the
keyring directly (the agent finds the tokens when it starts).

The issuer and client id come from the settings (``oidc_issuer``, ``oidc_client_id``;
managed settings win). ``--issuer``/``--client-id`` override them for this run only and
are refused when the organization manages the key. Tokens go to the OS keyring; with no
keyring the commands say so and store nothing.

``logout`` also ends the session at the identity provider (its logout page opens in the
browser) when the setting ``end_provider_session`` is on (default) and the provider offers
it; the tokens are revoked at the issuer that issued them, whatever is configured now.

Every string from the provider (names, emails, error descriptions) is printed as data:
control characters escaped (``core.text``).

Exit codes: 0 done; 1 sign-in failed or not signed in; 2 not configured / bad option;
3 no usable keyring (none, or locked), or refused by the agent (always-on, reason too
short).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import webbrowser
from typing import Any

from core.auth import (
    AuthError,
    ConfigurationError,
    OidcClient,
    OidcConfig,
    SecretStore,
    SecretStoreError,
    Session,
    TokenSet,
)
from core.text import safe_line, safe_text

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_NO_KEYRING = 3
EXIT_REFUSED = 3


async def _config(args: argparse.Namespace) -> OidcConfig:
    """The OIDC config: flags, else settings, else the controller's discovery document.

    Same rule as the engine's wiring, so both find the same keyring entry: the issuer
    from ``oidc_issuer`` if set, else from the controller (``controller_url``); the
    client id from ``oidc_client_id`` unless it is the default, else the controller's.
    Raises ``ConfigurationError``.
    """
    from core import settings

    current = settings.load()
    issuer, client_id = current.oidc_issuer, current.oidc_client_id
    client_id_set = current.source("oidc_client_id") != "default"
    for flag, key in (("issuer", "oidc_issuer"), ("client_id", "oidc_client_id")):
        value = getattr(args, flag, None)
        if value is None:
            continue
        if current.locked(key):
            raise ConfigurationError(
                f"'{key}' is set by your organization; --{flag.replace('_', '-')} is refused.",
                "Leave the option out to use your organization's setting.",
            )
        if key == "oidc_issuer":
            issuer = value
        else:
            client_id, client_id_set = value, True
    if not issuer or not client_id_set:
        # The hint names only what is really missing (issuer, client id or both).
        missing = [
            key
            for key, have in (("oidc_issuer", bool(issuer)), ("oidc_client_id", client_id_set))
            if not have
        ]
        doc = await _controller_discovery(current, missing)
        if doc is not None:
            issuer = issuer or doc.issuer
            client_id = client_id if client_id_set else doc.client_id
    if not issuer:
        raise ConfigurationError(
            "No OpenID Connect issuer is configured.",
            "Run 'rustronaut config set controller_url https://...' (or 'oidc_issuer'), "
            "or ask IT to set it.",
        )
    return OidcConfig(issuer=str(issuer), client_id=str(client_id))


async def _controller_discovery(current: Any, missing: list[str]) -> Any:
    """The controller's discovery document (online, else the engine's cached copy).

    ``missing``: the settings the document stands in for (``oidc_issuer``,
    ``oidc_client_id``); when it cannot be had, the error asks for exactly those.
    """
    if not current.controller_url:
        return None
    import msgspec

    from core.controlplane import ControlPlaneClient
    from core.controlplane.models import Discovery
    from core.paths import data_dir

    pin = tuple(current.tls_pin_sha256) or None  # every pin: a backup pin must work too
    try:
        async with ControlPlaneClient(current.controller_url, spki_pin=pin) as plain:
            return await plain.discovery()
    except Exception as exc:
        cache = data_dir() / "discovery.json"
        try:
            return msgspec.json.decode(cache.read_bytes(), type=Discovery)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            what = (
                "which sign-in client to use"
                if missing == ["oidc_client_id"]
                else "which identity provider to use"
            )
            keys = " and ".join(f"'{key}'" for key in missing)
            raise ConfigurationError(
                f"The controller ({current.controller_url}) could not be asked {what} ({exc}).",
                f"Check your network connection and try again, or set {keys} "
                "(rustronaut config set KEY VALUE), or ask IT.",
            ) from exc


def _fail(exc: AuthError) -> int:
    print(
        f"rustronaut: {safe_text(exc.title)}: {safe_text(exc.message)}\n"
        f"  Next step: {safe_text(exc.next_step)}",
        file=sys.stderr,
    )
    if isinstance(exc, SecretStoreError):
        return EXIT_NO_KEYRING
    if isinstance(exc, ConfigurationError):
        return EXIT_CONFIG
    return EXIT_FAILED


async def _print_and_open(url: str) -> None:
    # The URL is printed first so a user without a working browser can copy it; the
    # login keeps waiting even if no browser could be started.
    print(f"Opening your browser to sign in. If it does not open, visit:\n  {url}", flush=True)
    await asyncio.to_thread(webbrowser.open, url)


async def _print_and_open_logout(url: str) -> None:
    print(
        "Opening your browser to end the session at the identity provider. If it does not "
        f"open, visit:\n  {url}",
        flush=True,
    )
    await asyncio.to_thread(webbrowser.open, url)


def _device_prompt(user_code: str, uri: str, complete: str | None) -> None:
    print(f"To sign in, open {uri}\nand enter the code:  {safe_line(user_code)}", flush=True)
    if complete:
        print(f"(or open {complete} directly)", flush=True)
    print("Waiting for the sign-in to be approved…", flush=True)


async def _attached() -> Any:
    """The running engine, or None when no agent runs (or it cannot be reached)."""
    from core.engine.localapi.client import RemoteEngine
    from core.engine.localapi.errors import LocalApiError

    try:
        return await RemoteEngine.attach(client="cli")
    except LocalApiError:
        return None


async def _login_via_agent(engine: Any, device: bool) -> int:
    from core.cli.commands.session import exit_code, print_device_code, print_error
    from core.engine.localapi.errors import LocalApiError

    def open_url(url: str) -> None:
        from core.aio import spawn

        spawn(_print_and_open(url), name="cli-open-browser")

    try:
        engine.subscribe(print_device_code)
        await engine.sign_in(device_code=device, open_url=open_url)
        snap = await engine.refresh()
    except LocalApiError as exc:
        print_error(exc)
        return exit_code(exc)
    finally:
        await engine.stop()
    if snap.user is None:
        err = snap.error
        print(
            f"rustronaut: {safe_text(err.title)}: {safe_text(err.detail)}\n"
            f"  Next step: {safe_text(err.next_step)}"
            if err is not None
            else "rustronaut: the sign-in did not complete.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"Signed in as {safe_line(snap.user)}.")
    if snap.session_renewable is False:
        print(_no_renewal_note(snap.session_expires_at))
    return 0


def _no_renewal_note(ends: float | None) -> str:
    return (
        "Note: the identity provider gave no refresh token, so this sign-in cannot renew "
        f"itself; it ends {_when(ends)}. Next step: sign in again then (or ask IT to allow "
        "offline access for Rustronaut)."
    )


async def _login(args: argparse.Namespace) -> int:
    if args.issuer is None and args.client_id is None:
        engine = await _attached()
        if engine is not None:
            return await _login_via_agent(engine, args.device)
    try:
        config = await _config(args)
        async with OidcClient(config, open_url=_print_and_open) as client:
            session = Session(client, SecretStore())
            if args.device:
                identity = await session.login_device(_device_prompt)
            else:
                identity = await session.login_browser()
            tokens = session.tokens
    except AuthError as exc:
        return _fail(exc)
    print(f"Signed in as {safe_line(identity.display_name)} ({config.issuer}).")
    if tokens is not None and not tokens.renewable:
        print(_no_renewal_note(tokens.session_expires_at))
    return 0


async def _logout(args: argparse.Namespace) -> int:
    from core.cli.commands.session import check_reason, exit_code, print_error
    from core.engine.errors import ReasonTooShortError
    from core.engine.localapi.errors import LocalApiError

    try:
        reason = check_reason(args.reason)
    except ReasonTooShortError as exc:
        print(
            f"rustronaut: {exc.title}: {exc.detail}\n  Next step: {exc.next_step}", file=sys.stderr
        )
        return EXIT_REFUSED
    engine = await _attached()
    if engine is not None:
        # Sign the running session out, so the tray and every other front end see it.
        try:
            await engine.sign_out(break_glass_reason=reason)
        except LocalApiError as exc:
            print_error(exc)
            return exit_code(exc)
        finally:
            await engine.stop()
        print("Signed out; the session was ended and the tokens forgotten.")
        return 0
    try:
        from core import settings

        config = await _config(args)
        end_provider_session = bool(settings.load().end_provider_session)
        async with OidcClient(config, open_url=_print_and_open_logout) as client:
            session = Session(client, SecretStore(), end_provider_session=end_provider_session)
            revoked = await session.logout()
    except AuthError as exc:
        return _fail(exc)
    if revoked:
        print("Signed out; the tokens were revoked at the identity provider.")
    else:
        print("Signed out; the tokens were removed from this device.")
    return 0


def _when(epoch: float | None) -> str:
    """ "at 2026-12-07 10:00:00 UTC (in 3 h)", or words for an unknown time."""
    if epoch is None:
        return "at a time the identity provider did not say"
    left = int(epoch - time.time())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))
    return f"at {stamp} ({'passed' if left <= 0 else f'in {_duration(left)}'})"


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _session_line(tokens: TokenSet) -> str:
    """When the session ends and whether it renews itself, in words."""
    if tokens.renewable:
        if tokens.session_expires_at is None:
            return (
                "renews itself (refresh token); ends when the identity provider stops "
                "accepting it (it did not say when)"
            )
        return f"renews itself (refresh token); ends {_when(tokens.session_expires_at)}"
    return (
        f"ends {_when(tokens.session_expires_at)}; cannot renew itself (no refresh token): "
        "sign in again then"
    )


async def _whoami(args: argparse.Namespace) -> int:
    try:
        config = await _config(args)
        async with OidcClient(config) as client:
            session = Session(client, SecretStore())
            tokens = await session.load()
    except (ConfigurationError, SecretStoreError) as exc:
        return _fail(exc)
    if tokens is None:
        print("Not signed in. Run 'rustronaut login'.", file=sys.stderr)
        return EXIT_FAILED
    who = tokens.identity
    # The provider's words are data: escaped for the terminal (JSON escapes them itself).
    info: dict[str, Any] = {
        "user": who.display_name,
        "subject": who.sub,
        "email": who.email,
        "name": who.name,
        "issuer": tokens.issuer,
        "client_id": tokens.client_id,
        "access_token_expires_at": tokens.expires_at,
        "session_expires_at": tokens.session_expires_at,
        "session_renewable": tokens.renewable,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Signed in as {safe_line(who.display_name)}")
    if who.name:
        print(f"  name:            {safe_line(who.name)}")
    if who.email:
        print(f"  email:           {safe_line(who.email)}")
    print(f"  subject:         {safe_line(who.sub)}")
    print(f"  issuer:          {safe_line(tokens.issuer)}")
    print(f"  access token:    expires {_when(tokens.expires_at)}")
    print(f"  session:         {_session_line(tokens)}")
    return 0


def _provider_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--issuer", help="OIDC issuer URL for this run (default: settings)")
    p.add_argument("--client-id", help="OIDC client id for this run (default: settings)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``login``, ``logout`` and ``whoami``."""
    p = sub.add_parser("login", help="sign in with your company account")
    p.add_argument(
        "--device",
        action="store_true",
        help="sign in with a code on another device (no browser needed here)",
    )
    _provider_flags(p)
    p.set_defaults(func=_login)

    p = sub.add_parser("logout", help="sign out, revoke and forget the tokens")
    p.add_argument(
        "--reason",
        help="break-glass reason (required under managed always-on; IT is told)",
    )
    _provider_flags(p)
    p.set_defaults(func=_logout)

    p = sub.add_parser("whoami", help="who is signed in, and until when")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _provider_flags(p)
    p.set_defaults(func=_whoami)
