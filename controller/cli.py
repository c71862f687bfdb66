"""``rustronaut-controller``: init, serve and a small admin CLI over the admin API.

``init`` writes a config, the bundle-signing key ring and prints the admin token once
(only its hash is stored). ``serve`` runs the controller. ``resource add``, ``rule add``,
``device list``, ``device revoke`` and ``audit list`` (break-glass reports) call the
running controller's admin API with the token from ``--token`` or
``RUSTRONAUT_ADMIN_TOKEN``. Exit codes: 0 ok, 1 refused by the
controller (the problem's detail is printed), 2 usage or local error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from controller.config import (
    ConfigError,
    ConsoleConfig,
    ControllerConfig,
    DevOidcConfig,
    RelayConfig,
    hash_admin_token,
    load_config,
    new_admin_token,
    save_config,
)
from controller.keys import SigningKeyRing
from controller.relayca import CA_CERT_FILE, RelayCA
from controller.storage import StorageError
from core.aio import cancel_and_wait, spawn

__all__ = ["main"]


#: The relay token file ``init --relay`` writes beside the config (0600).
RELAY_TOKEN_FILE = "relay-token"  # noqa: S105 - a file name, not a secret


def _init_relays(args: argparse.Namespace) -> tuple[RelayConfig, ...]:
    """``--relay NAME=HOST:PORT`` (+ ``--relay-server-name NAME=HOST``) as relay configs.
    Raises ``ValueError`` naming the bad option."""
    server_names: dict[str, str] = {}
    for item in args.relay_server_name or ():
        name, sep, host = item.partition("=")
        if not sep or not name or not host:
            raise ValueError(f"--relay-server-name {item!r}: expected NAME=HOST")
        server_names[name] = host
    relays: list[RelayConfig] = []
    for item in args.relay or ():
        name, sep, endpoint = item.partition("=")
        if not sep or not name or not endpoint:
            raise ValueError(f"--relay {item!r}: expected NAME=HOST:PORT")
        relays.append(RelayConfig(name=name, endpoint=endpoint, server_name=server_names.get(name)))
    unknown = sorted(set(server_names) - {r.name for r in relays})
    if unknown:
        raise ValueError(f"--relay-server-name names no --relay: {unknown[0]!r}")
    return tuple(relays)


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (atomic replace)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def _print_relay_setup(cfg: ControllerConfig, keys_dir: Path, token_path: Path) -> None:
    """Where the relay CA and token are, and a relay config to start from, per relay."""
    ca_path = keys_dir / CA_CERT_FILE
    print(f"relay CA (relays' client_ca_file): {ca_path}")
    print(f"relay token (relays' token_file, keep secret): {token_path}")
    for relay in cfg.relays:
        _host, port = relay.spec().address()
        example = {
            "name": relay.name,
            "listen": f"0.0.0.0:{port}",
            "cert_file": f"{relay.name}-cert.pem",
            "key_file": f"{relay.name}-key.pem",
            "client_ca_file": str(ca_path),
            "controller_url": cfg.effective_public_url,
            "token_file": str(token_path),
            "gateways": ["GATEWAY-HOST:51820"],
            "max_streams": 1000,
            "queue_bytes": 262144,
            "poll_interval_s": 0.5,
        }
        print(
            f"relay {relay.name}: a config for `rustronaut-controller relay --config F` "
            f"(set cert_file/key_file to its TLS certificate for {relay.spec().tls_name()} "
            "and gateways to the WireGuard endpoints it forwards to):"
        )
        print(json.dumps(example, indent=2))


def _init(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to overwrite", file=sys.stderr)
        return 2
    token = new_admin_token()
    console = None
    if args.console or args.console_issuer:
        if not args.console_issuer and not args.dev_oidc:
            print(
                "--console needs --dev-oidc or --console-issuer (the organisation's provider)",
                file=sys.stderr,
            )
            return 2
        if args.console_issuer and not args.console_secret_file:
            print(
                "--console-issuer needs --console-secret-file (the client secret the "
                "provider gave the console)",
                file=sys.stderr,
            )
            return 2
        console = ConsoleConfig(
            issuer=args.console_issuer or "",
            client_id=args.console_client_id,
            client_secret_file=args.console_secret_file,
            admin_groups=tuple(args.console_admin_group or ("rustronaut-admins",)),
        )
    try:
        relays = _init_relays(args)
        cfg = ControllerConfig(
            admin_token_sha256=hash_admin_token(token),
            keys_dir="keys",
            database=args.database or "sqlite:///controller.db",
            host=args.host,
            port=args.port,
            pool=args.pool,
            public_url=args.public_url or "",
            dev_oidc=DevOidcConfig() if args.dev_oidc else None,
            console=console,
            relays=relays,
            relay_token_file=RELAY_TOKEN_FILE if relays else None,
        )
    except (ValueError, ConfigError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    token_path = path.parent / RELAY_TOKEN_FILE
    if relays:  # before the config that names it
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_secret(token_path, secrets.token_urlsafe(32) + "\n")
    save_config(path, cfg)
    ring = SigningKeyRing.load_or_create(path.parent / "keys")
    print(f"wrote {path}")
    print(f"policy root (clients' policy_trust_anchors): {ring.root_public()}")
    print(f"admin token (shown once): {token}")
    if relays:
        RelayCA.load_or_create(path.parent / "keys")
        _print_relay_setup(cfg, path.parent / "keys", token_path)
    if console is not None:
        base = cfg.effective_public_url
        print(f"admin console: {base}/console/ (admins: {', '.join(console.admin_groups)})")
        if console.issuer:
            print(f"register this redirect URI at {console.issuer}: {base}/console/callback")
    return 0


def _keys_root(args: argparse.Namespace) -> int:
    """Print the policy root's public key: the value IT puts in policy_trust_anchors."""
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(SigningKeyRing.load_or_create(Path(cfg.keys_dir)).root_public())
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from controller.testing import build, listen_socket

    try:
        cfg = load_config(Path(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    base = cfg.public_url or f"http://{cfg.host}:{cfg.port}"
    try:
        app, service, _dev, issuer = build(cfg, base_url=base)
    except (ConfigError, StorageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"controller on {base} (issuer {issuer})", file=sys.stderr)
    if cfg.console is not None:
        print(f"admin console on {base}/console/", file=sys.stderr)
    sock = listen_socket(cfg.host, cfg.port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="off"))

    async def serve() -> None:
        # The gateway drops expired devices on its own, beside the API.
        expiry = spawn(service.run_expiry(), name="controller-expiry")
        try:
            await server.serve(sockets=[sock])
        finally:
            await cancel_and_wait(expiry)

    try:
        asyncio.run(serve())
    finally:
        service.storage.close()
    return 0


def _admin(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    token = args.token or os.environ.get("RUSTRONAUT_ADMIN_TOKEN", "")
    if not token:
        print("admin token needed: --token or RUSTRONAUT_ADMIN_TOKEN", file=sys.stderr)
        return 2
    try:
        resp = httpx.request(
            method,
            args.url.rstrip("/") + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        print(f"cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        print(f"refused ({resp.status_code}): {detail}", file=sys.stderr)
        return 1
    if resp.content:
        print(json.dumps(resp.json(), indent=2))
    return 0


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rustronaut-controller", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    init = sub.add_parser("init", help="write config, keys and an admin token")
    init.add_argument("--config", default="controller.json")
    init.add_argument("--database")
    init.add_argument("--host", default="127.0.0.1")
    init.add_argument("--port", type=int, default=8443)
    init.add_argument("--pool", default="10.77.0.0/24")
    init.add_argument("--dev-oidc", action="store_true", help="enable the dev OIDC provider")
    init.add_argument("--public-url", help="the https:// URL clients and admins reach")
    init.add_argument("--console", action="store_true", help="serve the admin console (/console)")
    init.add_argument("--console-issuer", help="the OIDC issuer admins sign in with")
    init.add_argument("--console-client-id", default="rustronaut-console")
    init.add_argument("--console-secret-file", help="file holding the console's client secret")
    init.add_argument(
        "--console-admin-group",
        action="append",
        help="a group whose members may use the console (repeatable)",
    )
    init.add_argument(
        "--relay",
        action="append",
        metavar="NAME=HOST:PORT",
        help="an mTLS relay for networks that drop UDP (repeatable); writes a relay token",
    )
    init.add_argument(
        "--relay-server-name",
        action="append",
        metavar="NAME=HOST",
        help="the name on relay NAME's TLS certificate (needed when HOST:PORT is an IP)",
    )
    init.add_argument("--force", action="store_true")
    serve = sub.add_parser("serve", help="run the controller")
    serve.add_argument("--config", default="controller.json")
    relay_p = sub.add_parser("relay", help="run an mTLS relay (WireGuard over TLS, no UDP)")
    relay_p.add_argument("--config", required=True, help="the relay's JSON config")
    relay_p.add_argument("--stats-file", help="write the relay's counters here every second")
    relay_p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    keys = sub.add_parser("keys").add_subparsers(dest="action", required=True)
    kroot = keys.add_parser("root", help="print the policy root key (policy_trust_anchors)")
    kroot.add_argument("--config", default="controller.json")

    def admin(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8443")
        parser.add_argument("--token")

    res = sub.add_parser("resource").add_subparsers(dest="action", required=True)
    radd = res.add_parser("add", help="add a resource")
    admin(radd)
    radd.add_argument("id")
    radd.add_argument("--name", default="")
    radd.add_argument("--host", action="append", default=[])
    radd.add_argument("--cidr", action="append", default=[])
    radd.add_argument("--port", action="append", type=int, default=[])
    rule = sub.add_parser("rule").add_subparsers(dest="action", required=True)
    ruadd = rule.add_parser("add", help="add a rule")
    admin(ruadd)
    ruadd.add_argument("id")
    ruadd.add_argument("--effect", choices=["allow", "deny"], default="allow")
    ruadd.add_argument("--resource", action="append", required=True)
    ruadd.add_argument("--priority", type=int, default=0)
    ruadd.add_argument("--group", action="append", default=[], help="require user.groups")
    ruadd.add_argument("--conditions", type=_json_arg, help="condition tree as JSON")
    dev = sub.add_parser("device").add_subparsers(dest="action", required=True)
    admin(dev.add_parser("list", help="list devices"))
    drev = dev.add_parser("revoke", help="revoke a device")
    admin(drev)
    drev.add_argument("device_id")
    aud = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    alist = aud.add_parser("list", help="list audit records (break-glass disconnects)")
    admin(alist)
    alist.add_argument("--device", help="only this device's records")
    alist.add_argument("--limit", type=int, default=1000, help="newest N records (1-1000)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.cmd == "init":
        return _init(args)
    if args.cmd == "serve":
        return _serve(args)
    if args.cmd == "relay":
        from controller.relay.__main__ import run as run_relay

        return run_relay(args)
    if args.cmd == "keys":
        return _keys_root(args)
    if args.cmd == "resource":
        body = {
            "id": args.id,
            "name": args.name or args.id,
            "hosts": args.host,
            "cidrs": args.cidr,
            "ports": args.port,
        }
        return _admin(args, "PUT", f"/v1/admin/resources/{args.id}", body)
    if args.cmd == "rule":
        body = {
            "id": args.id,
            "effect": args.effect,
            "resources": args.resource,
            "priority": args.priority,
        }
        cond = args.conditions
        if args.group and cond is None:
            cond = {"kind": "fact", "fact": "user.groups", "op": "in", "value": args.group}
        if cond is not None:
            body["conditions"] = cond
        return _admin(args, "PUT", f"/v1/admin/rules/{args.id}", body)
    if args.cmd == "audit":
        query = {"limit": str(args.limit)}
        if args.device:
            query["device_id"] = args.device
        return _admin(args, "GET", "/v1/admin/audit?" + urlencode(query))
    if args.action == "list":
        return _admin(args, "GET", "/v1/admin/devices")
    return _admin(args, "POST", f"/v1/admin/devices/{args.device_id}/revoke")


if __name__ == "__main__":
    sys.exit(main())
