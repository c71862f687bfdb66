"""The client's updater: fetch the signed manifest, decide, hand it to the helper.

:meth:`Updater.run_once` is one check: nothing when updates are off (``auto_update``
false, no ``update_url`` or no ``update_keys``), ``current`` when the manifest names the
installed version, else the helper is asked to install (:class:`Installer`) and the
answer is ``started``: the installer runs detached, so whether it worked is learnt
later (:mod:`core.update.pending`, recorded here when given one). The
manifest is fetched with httpx (transport injectable: the test seam), at most
:data:`~wg_backends.signed.update_manifest.MAX_MANIFEST` bytes, and verified here with
the same functions the helper uses, so a tampered, stale, older or unpinned manifest is
refused before the helper is bothered. Which thread: the engine's loop.
"""

from __future__ import annotations

import asyncio
import logging
import platform as _platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from core import __version__
from core.update.errors import UpdateError, UpdateFetchError, UpdateRejected
from core.update.floor import SeenFloor
from core.update.pending import PendingUpdate
from wg_backends.errors import HelperRefused, HelperUnavailable
from wg_backends.signed.update_manifest import (
    MAX_MANIFEST,
    UpdateRefused,
    VerifiedManifest,
    check_version,
    install_argv,
    platform_key,
    verify_manifest,
)

if TYPE_CHECKING:
    from core.settings.loader import EffectiveSettings
    from core.settings.model import Settings
    from wg_backends.helper.client import HelperClient

__all__ = [
    "INSTALL_WAIT",
    "AnswerLost",
    "HelperInstaller",
    "Installer",
    "Outcome",
    "UpdateConfig",
    "Updater",
]

_log = logging.getLogger(__name__)


class Installer(Protocol):
    """Asks the privileged helper to install the release a manifest names. Raises
    ``HelperRefused`` (a refusal), ``HelperUnavailable`` (nothing was asked) or
    :class:`AnswerLost` (asked, but the answer did not arrive)."""

    async def install_update(self, manifest: str) -> Mapping[str, Any]: ...


class AnswerLost(Exception):
    """The helper was asked to install but its answer never arrived (the connection
    closed: the installer may have stopped the helper before it answered). The update
    may be under way; the pending record (:mod:`core.update.pending`) tells later."""


#: Seconds the client waits for the helper's answer to ``install_update``: the helper
#: answers once the installer is downloaded, checked again and started.
INSTALL_WAIT = 2400.0


class HelperInstaller:
    """:class:`Installer` over a :class:`~wg_backends.helper.client.HelperClient` (use a
    client with a long timeout: the helper answers once the installer is downloaded and
    started). A connection lost after the request was sent is :class:`AnswerLost`.
    ``close_after``: close the connection after each install (a scheduled check must
    not hold one of the account's helper connections for hours)."""

    def __init__(self, client: HelperClient, *, close_after: bool = False) -> None:
        self._client = client
        self._close_after = close_after

    @classmethod
    def at(cls, socket_path: Path | None = None) -> HelperInstaller:
        """One connecting to the helper the engine uses (``core.tunnel.helper_socket``;
        the named pipe on Windows), waiting :data:`INSTALL_WAIT`, closed after each use."""
        from core.tunnel import helper_socket
        from wg_backends.helper.client import HelperClient

        client = HelperClient(helper_socket(socket_path), timeout=INSTALL_WAIT)
        return cls(client, close_after=True)

    async def install_update(self, manifest: str) -> Mapping[str, Any]:
        try:
            await self._client.connect()  # HelperUnavailable here: nothing was asked
            try:
                return await self._client.install_update(manifest)
            except HelperUnavailable as exc:
                raise AnswerLost(str(exc)) from None
        finally:
            if self._close_after:
                await self._client.close()


@dataclass(frozen=True, slots=True)
class UpdateConfig:
    """The update settings the client uses (see ``core.settings.model``)."""

    auto_update: bool = True
    update_url: str = ""
    update_keys: tuple[str, ...] = ()
    update_pin_version: str = ""

    @classmethod
    def from_settings(cls, settings: Settings | EffectiveSettings) -> UpdateConfig:
        return cls(
            auto_update=settings.auto_update,
            update_url=settings.update_url,
            update_keys=settings.update_keys,
            update_pin_version=settings.update_pin_version,
        )

    @property
    def enabled(self) -> bool:
        return self.auto_update and bool(self.update_url) and bool(self.update_keys)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check did: ``off`` (nothing asked), ``current`` (up to date),
    ``available`` (``version`` is newer and allowed; :meth:`Updater.check` only) or
    ``started`` (the helper verified ``version`` and started its installer, which has
    not finished: :mod:`core.update.pending` learns later whether it worked)."""

    state: Literal["off", "current", "available", "started"]
    version: str | None = None


class Updater:
    """One updater per client. ``platform`` and ``installed`` default to this computer
    and this build; ``clock`` returns Unix seconds."""

    def __init__(
        self,
        config: UpdateConfig,
        installer: Installer,
        floor: SeenFloor,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        platform: str | None = None,
        installed: str = __version__,
    ) -> None:
        self.config = config
        self._installer = installer
        self._floor = floor
        self._transport = transport
        self._clock = clock
        self.platform = platform or platform_key(sys.platform, _platform.machine())
        self.installed = installed

    async def fetch(self) -> str:
        """The manifest token at ``update_url``. Raises :class:`UpdateFetchError`."""
        try:
            async with (
                httpx.AsyncClient(transport=self._transport, timeout=15.0) as client,
                client.stream("GET", self.config.update_url) as response,
            ):
                if response.status_code != 200:
                    raise UpdateFetchError(f"update manifest: HTTP {response.status_code}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_MANIFEST:
                        raise UpdateFetchError(f"update manifest over {MAX_MANIFEST} bytes")
        except httpx.HTTPError as exc:
            raise UpdateFetchError(f"update manifest not fetched: {exc}") from None
        try:
            return body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise UpdateRejected("update_malformed", "update manifest is not ASCII") from None

    def decide(self, token: str) -> VerifiedManifest:
        """Verify ``token`` and return it when it is newer and allowed. Raises
        :class:`UpdateRejected` (``update_current`` when it is the installed version).
        The floor rises only with a version installed or current: a manifest the helper
        refuses (its managed pin, say) must not make the pinned version a rollback."""
        try:
            verified = verify_manifest(
                token, self.config.update_keys, now=self._clock(), platform=self.platform
            )
            install_argv(verified.platform, "")  # Linux: the repositories update it
            floor = self._floor.read()
            try:
                check_version(
                    verified.version,
                    installed=self.installed,
                    floor=floor,
                    pin=self.config.update_pin_version or None,
                )
            except UpdateRefused as exc:
                if exc.code == "update_current":
                    self._floor.advance(verified.version)
                raise
            return verified
        except UpdateRefused as exc:
            raise UpdateRejected(exc.code, exc.message) from None

    async def check(self) -> tuple[Outcome, str | None]:
        """Fetch and decide, install nothing: the outcome (``off``, ``current`` or
        ``available``) and the manifest token when one is available. Raises
        :class:`UpdateError`."""
        if not self.config.enabled:
            return Outcome("off"), None
        token = await self.fetch()
        try:
            verified = self.decide(token)
        except UpdateRejected as exc:
            if exc.code == "update_current":
                return Outcome("current", self.installed), None
            raise
        return Outcome("available", verified.version), token

    async def run_once(self, *, record: PendingUpdate | None = None) -> Outcome:
        """Check once and have the helper install a newer release: ``started`` once the
        helper has verified it and started its installer. ``record`` keeps the version
        as pending from just before the helper is asked (removed when it refuses).
        Raises :class:`UpdateError` (fetch failures, refusals here or by the helper)."""
        outcome, token = await self.check()
        if outcome.state != "available" or token is None:
            return outcome
        assert outcome.version is not None
        if record is not None:
            record.record(outcome.version)
        try:
            await self._installer.install_update(token)
        except AnswerLost as exc:  # maybe started: the pending record tells later
            _log.warning("update %s: the helper's answer was lost: %s", outcome.version, exc)
        except HelperRefused as exc:
            self._forget(record)
            raise UpdateRejected(exc.helper_code, exc.message) from None
        except HelperUnavailable as exc:
            self._forget(record)
            raise UpdateError("update_helper", str(exc)) from None
        except asyncio.CancelledError:  # the helper may go on: the record stays
            raise
        except BaseException:
            self._forget(record)
            raise
        self._floor.advance(outcome.version)
        # The version this client verified (the helper's answer names the same one).
        return Outcome("started", outcome.version)

    @staticmethod
    def _forget(record: PendingUpdate | None) -> None:
        if record is not None:
            record.clear()
