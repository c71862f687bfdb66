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
    hash_admin_token,
    load_config,
    new_admin_token,
    save_config,
)
from controller.keys import SigningKeyRing
from controller.storage import StorageError
from core.aio import cancel_and_wait, spawn

__all__ = ["main"]


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
        )
    except (ValueError, ConfigError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    save_config(path, cfg)
    ring = SigningKeyRing.load_or_create(path.parent / "keys")
    print(f"wrote {path}")
    print(f"policy root (clients' policy_trust_anchors): {ring.root_public()}")
    print(f"admin token (shown once): {token}")
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
    init.add_argument("--force", action="store_true")
    serve = sub.add_parser("serve", help="run the controller")
    serve.add_argument("--config", default="controller.json")
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
