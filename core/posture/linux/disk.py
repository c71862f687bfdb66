"""Linux ``disk.encrypted``: is the root file system on a dm-crypt (LUKS) device?

``findmnt`` names the root's source; ``lsblk -J -s`` lists that device and everything
beneath it (inverse tree). Any ``crypt`` node on the way means encrypted. sysfs is the
fallback when lsblk is missing: ``/sys/class/block/<dev>/dm/uuid`` starts with
``CRYPT-`` for dm-crypt, and ``slaves/`` walks down the stack. A root that is not a
block device (overlay, tmpfs, NFS, ZFS) is unknown, never false or true by guess.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

from core.posture.collector import Answer, CollectContext, Collector, Unknown
from core.posture.errors import ParseError, ToolMissingError

__all__ = ["COLLECTOR", "crypt_in_tree", "parse_findmnt"]

FINDMNT = ("findmnt", "-n", "-J", "-o", "SOURCE,FSTYPE", "/")


def parse_findmnt(text: str) -> tuple[str, str]:
    """``findmnt -J`` for ``/`` → (source, fstype); raises ``ParseError``."""
    try:
        data = json.loads(text)
        fs = data["filesystems"][0]
        return str(fs["source"]), str(fs.get("fstype") or "")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ParseError(f"findmnt: {exc}") from exc


def crypt_in_tree(text: str) -> bool:
    """``lsblk -J -s`` output → True when any node is of type ``crypt``.

    Raises ``ParseError`` when the JSON has no block devices.
    """
    try:
        data = json.loads(text)
        devices = data["blockdevices"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"lsblk: {exc}") from exc
    if not isinstance(devices, list) or not devices:
        raise ParseError("lsblk listed no block devices")

    def walk(node: Any) -> bool:
        if not isinstance(node, dict):
            raise ParseError("lsblk: node is not an object")
        if str(node.get("type", "")).lower() == "crypt":
            return True
        return any(walk(child) for child in node.get("children", []) or [])

    return any(walk(d) for d in devices)


def _sysfs_crypt(ctx: CollectContext, dev: str, depth: int = 0) -> bool | None:
    base = ctx.path(f"/sys/class/block/{dev}")
    if not base.exists() or depth > 8:
        return None
    try:
        if (base / "dm" / "uuid").read_text().startswith("CRYPT-"):
            return True
    except OSError:
        pass
    slaves = base / "slaves"
    children = sorted(os.listdir(slaves)) if slaves.is_dir() else []
    return any(_sysfs_crypt(ctx, s, depth + 1) for s in children)


def _sysfs_by_device(ctx: CollectContext, device: str) -> bool | None:
    real = os.path.realpath(ctx.path(device))
    return _sysfs_crypt(ctx, os.path.basename(real))


_NOT_BLOCK = ("overlay", "tmpfs", "nfs", "nfs4", "cifs", "zfs", "virtiofs", "9p", "fuse")


async def _collect(ctx: CollectContext) -> Mapping[str, Answer]:
    source, fstype = parse_findmnt((await ctx.run(FINDMNT)).stdout)
    if not source.startswith("/dev/") or fstype.split(".")[0] in _NOT_BLOCK:
        return {"disk.encrypted": Unknown(f"root is on {fstype or source}, not a block device")}
    # btrfs sources look like /dev/sda2[/@]: drop the subvolume.
    device = source.split("[", 1)[0]
    try:
        result = await ctx.run(("lsblk", "-J", "-s", "-o", "NAME,TYPE,FSTYPE", device))
    except ToolMissingError:
        found = await asyncio.to_thread(_sysfs_by_device, ctx, device)
        if found is None:
            return {"disk.encrypted": Unknown("lsblk: not installed; sysfs has no entry")}
        return {"disk.encrypted": found}
    return {"disk.encrypted": crypt_in_tree(result.stdout)}


COLLECTOR = Collector("linux-disk", ("disk.encrypted",), _collect, cheap=True)
