"""The relay's view of active devices: polled from the controller, kept in memory.

``GET {controller_url}/v1/relay/devices`` with ``Authorization: Bearer <relay token>``
answers ``{"devices": {"<device id>": "<relay key, b64url of 32 raw bytes>"}}`` (enrolled,
not revoked, with a relay key) and an ``ETag``; the directory sends ``If-None-Match`` and
takes 304 as "unchanged". A device is admitted only while it is in the list with exactly
the key its certificate carries.

Failure rules (deny by default, but never a mass disconnect because of the controller):
before the first list arrives nobody is admitted; when the controller is unreachable, or
answers an error or a malformed list, the last good list stays in force and the failure
is logged once per streak. Entries with a malformed key are left out (those devices are
refused). :meth:`Directory.run` polls on its own thread; ``lookup`` is thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Final

import httpx
import msgspec

__all__ = ["Directory", "parse_devices"]

log = logging.getLogger("controller.relay")

#: A list of 100,000 devices is ~10 MB; a bigger answer is refused, not buffered.
MAX_LIST_BYTES: Final = 32 * 1024 * 1024
_MAX_ID: Final = 256


class _DeviceList(msgspec.Struct, frozen=True):
    devices: dict[str, str]


def _raw_key(text: str) -> bytes | None:
    if len(text) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def parse_devices(body: bytes) -> tuple[dict[str, bytes], int]:
    """``({device id: raw relay key}, entries left out)`` from the controller's answer.

    Raises ``ValueError`` when the body is not the expected JSON object.
    """
    try:
        parsed = msgspec.json.decode(body, type=_DeviceList)
    except msgspec.DecodeError as exc:
        raise ValueError(f"device list: {exc}") from None
    out: dict[str, bytes] = {}
    bad = 0
    for device_id, key in parsed.devices.items():
        raw = _raw_key(key)
        if raw is None or not device_id or len(device_id) > _MAX_ID:
            bad += 1
            continue
        out[device_id] = raw
    return out, bad


class Directory:
    """Active devices and their relay keys, refreshed from the controller.

    ``on_change`` is called (on the polling thread) with the new mapping after every
    change, so the server can close streams of devices that left it (revocation).
    """

    def __init__(
        self,
        controller_url: str,
        token: str,
        *,
        interval_s: float,
        on_change: Callable[[Mapping[str, bytes]], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = controller_url.rstrip("/") + "/v1/relay/devices"
        self._token = token
        self._interval = interval_s
        self._on_change = on_change
        self._devices: Mapping[str, bytes] = {}
        self._etag: str | None = None
        self._ready = threading.Event()
        self._failing = False
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(max(1.0, min(5.0, 2 * interval_s))),
            follow_redirects=False,
            trust_env=False,
        )
        self.polls = 0
        self.failures = 0

    @property
    def ready(self) -> bool:
        """True once a first list arrived (before that every device is refused)."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first list arrived (or ``timeout``); True if it did."""
        return self._ready.wait(timeout)

    def lookup(self, device_id: str) -> bytes | None:
        """The device's registered relay key, or None (unknown, revoked, or no list yet)."""
        return self._devices.get(device_id)

    def __len__(self) -> int:
        return len(self._devices)

    def poll_once(self) -> bool:
        """One request to the controller; True when the list is current. Never raises
        for the controller's failures (they are logged; the last good list stays)."""
        self.polls += 1
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if self._etag is not None and self._ready.is_set():
            headers["If-None-Match"] = self._etag
        try:
            with self._client.stream("GET", self._url, headers=headers) as resp:
                if resp.status_code == 304 and self._ready.is_set():
                    return self._recovered()
                if resp.status_code != 200:
                    return self._failed(f"the controller answered HTTP {resp.status_code}")
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_LIST_BYTES:
                        return self._failed(f"the device list is over {MAX_LIST_BYTES} bytes")
                etag = resp.headers.get("etag")
        except httpx.HTTPError as exc:
            return self._failed(f"cannot reach the controller: {type(exc).__name__}: {exc}")
        try:
            devices, bad = parse_devices(bytes(body))
        except ValueError as exc:
            return self._failed(str(exc))
        if bad:
            log.warning("relay directory: %d entries with a malformed id or key left out", bad)
        changed = devices != self._devices or not self._ready.is_set()
        self._devices = devices
        self._etag = etag
        first = not self._ready.is_set()
        self._ready.set()
        if first:
            log.info("relay directory: first list, %d devices", len(devices))
        self._recovered()
        if changed and self._on_change is not None:
            self._on_change(devices)
        return True

    def _failed(self, why: str) -> bool:
        self.failures += 1
        if not self._failing:
            keeping = (
                f"keeping the last list ({len(self._devices)} devices)"
                if self._ready.is_set()
                else "refusing every device until a first list arrives"
            )
            log.error("relay directory: %s; %s", why, keeping)
        self._failing = True
        return False

    def _recovered(self) -> bool:
        if self._failing:
            log.info("relay directory: the controller answers again")
        self._failing = False
        return True

    def run(self, stop: threading.Event) -> None:
        """Poll every ``interval_s`` until ``stop`` is set (the polling thread's body)."""
        while not stop.is_set():
            self.poll_once()
            stop.wait(self._interval)

    def close(self) -> None:
        """Close the HTTP client (after ``run`` returned)."""
        self._client.close()
