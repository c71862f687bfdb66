"""``Session``: the signed-in state — login, tokens kept fresh, logout — and ``SessionAuth``.

The session owns the one copy of the tokens in memory and in the keyring (one keyring
item holding the whole ``TokenSet``, so a rotated refresh token replaces the old one in a
single atomic write). ``access_token()`` refreshes shortly before expiry; concurrent
callers share one refresh (single flight), and a refresh runs to completion even if its
caller is cancelled, so a rotated refresh token is never lost half-way. A refused refresh
clears the session and raises ``ReauthRequired``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator

import httpx
import msgspec

from core.aio import spawn
from core.auth._threads import in_thread
from core.auth.errors import AuthError, ReauthRequired
from core.auth.flows import DevicePrompt, OidcClient, OpenUrl
from core.auth.idtoken import IdTokenClaims
from core.auth.secrets import TOKENS, SecretStore
from core.auth.tokens import TokenSet

__all__ = ["Session", "SessionAuth"]

_log = logging.getLogger(__name__)


class Session:
    """Tokens of the signed-in user for one ``OidcClient``. Loop thread only.

    ``refresh_margin_s``: refresh when the access token has less than this left.
    """

    def __init__(
        self,
        client: OidcClient,
        store: SecretStore,
        *,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self._margin = refresh_margin_s
        self._clock = clock
        self._tokens: TokenSet | None = None
        self._refresh: asyncio.Task[TokenSet | AuthError] | None = None

    # -- state -----------------------------------------------------------------------

    @property
    def tokens(self) -> TokenSet | None:
        """The current tokens (``None`` when signed out)."""
        return self._tokens

    @property
    def identity(self) -> IdTokenClaims | None:
        """Who is signed in (from the verified ID token), or ``None``."""
        return self._tokens.identity if self._tokens else None

    @property
    def expires_at(self) -> float | None:
        """When the current access token expires (epoch s), or ``None`` when signed out."""
        return self._tokens.expires_at if self._tokens else None

    @property
    def session_expires_at(self) -> float | None:
        """When a new sign-in will be needed, if known (the UI warns before it)."""
        return self._tokens.session_expires_at if self._tokens else None

    async def load(self) -> TokenSet | None:
        """Read stored tokens for this issuer and client. Idempotent.

        Returns ``None`` (signed out) when nothing usable is stored; a corrupt entry is
        removed. Raises ``SecretStoreError``/``NoSecretStoreError``.
        """
        raw = await in_thread(self.store.get, TOKENS)
        tokens: TokenSet | None = None
        if raw is not None:
            try:
                tokens = TokenSet.from_json(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                _log.warning("stored sign-in tokens are unreadable; removing them")
                await in_thread(self.store.delete, TOKENS)
        if tokens is not None and (
            tokens.issuer != self.client.issuer or tokens.client_id != self.client.config.client_id
        ):
            _log.info("stored tokens are for another issuer or client; ignoring them")
            tokens = None
        self._tokens = tokens
        return tokens

    # -- login / logout --------------------------------------------------------------

    async def login_browser(
        self, *, time_limit_s: float | None = None, open_url: OpenUrl | None = None
    ) -> IdTokenClaims:
        """Browser sign-in (see ``OidcClient.login_browser``); stores the tokens.

        The keyring is checked first, so the user never completes a login whose tokens
        cannot be kept. On any failure nothing is stored and the previous session stays.
        """
        await in_thread(self.store.backend)
        tokens = await self.client.login_browser(time_limit_s=time_limit_s, open_url=open_url)
        await self._store(tokens)
        return tokens.identity

    async def login_device(
        self, on_prompt: DevicePrompt, *, time_limit_s: float | None = None
    ) -> IdTokenClaims:
        """Device-code sign-in (see ``OidcClient.login_device``); stores the tokens."""
        await in_thread(self.store.backend)
        tokens = await self.client.login_device(on_prompt, time_limit_s=time_limit_s)
        await self._store(tokens)
        return tokens.identity

    async def logout(self) -> bool:
        """Revoke the tokens at the provider (where offered) and clear them. Idempotent.

        Returns whether the provider acknowledged the revocation. The local tokens are
        removed even when revocation fails; raises ``SecretStoreError`` if the keyring
        cannot delete them.
        """
        tokens = self._tokens
        if tokens is None:
            try:
                tokens = await self.load()
            except Exception:
                tokens = None
        revoked = False
        if tokens is not None:
            revoked = await self.client.revoke(tokens)
        self._tokens = None
        await in_thread(self.store.delete, TOKENS)
        return revoked

    async def _store(self, tokens: TokenSet) -> None:
        await in_thread(self.store.set, TOKENS, tokens.to_json().decode())
        self._tokens = tokens

    # -- access tokens ---------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token, refreshed first if it expires within the margin.

        Raises ``ReauthRequired`` when signed out or the refresh is refused (the stored
        tokens are then cleared), ``ProviderError`` on transient failures (tokens kept).
        """
        tokens = self._tokens
        if tokens is None:
            raise ReauthRequired("You are not signed in.")
        if self._clock() < tokens.expires_at - self._margin:
            return tokens.access_token
        return (await self._refreshed()).access_token

    async def refresh_after(self, stale_access_token: str) -> str:
        """A token other than ``stale_access_token`` (refused by a server), refreshing once.

        Concurrent callers with the same stale token share one refresh.
        """
        tokens = self._tokens
        if tokens is None:
            raise ReauthRequired("You are not signed in.")
        if tokens.access_token != stale_access_token:
            return tokens.access_token
        return (await self._refreshed()).access_token

    async def _refreshed(self) -> TokenSet:
        if self._refresh is None or self._refresh.done():
            self._refresh = spawn(self._do_refresh(), name="auth-refresh")
        # shield: a cancelled caller must not cancel the refresh (rotation in flight).
        outcome = await asyncio.shield(self._refresh)
        if isinstance(outcome, AuthError):
            # Raised in each waiter; returned (not raised) by the task so that spawn()
            # does not log an expected failure as a crashed background task.
            raise outcome
        return outcome

    async def _do_refresh(self) -> TokenSet | AuthError:
        try:
            return await self._refresh_once()
        except AuthError as exc:
            return exc

    async def _refresh_once(self) -> TokenSet:
        old = self._tokens
        if old is None:
            raise ReauthRequired("You are not signed in.")
        try:
            new = await self.client.refresh(old)
        except ReauthRequired:
            self._tokens = None
            try:
                await in_thread(self.store.delete, TOKENS)
            except Exception:
                _log.warning("could not remove refused tokens from the keyring", exc_info=True)
            raise
        # Memory first: even if the keyring write fails, this process keeps the rotated
        # refresh token (the old one is already dead at the provider).
        self._tokens = new
        await in_thread(self.store.set, TOKENS, new.to_json().decode())
        return new

    def auth(self) -> SessionAuth:
        """An ``httpx.Auth`` adding this session's bearer token (for the controller client)."""
        return SessionAuth(self)


class SessionAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` from a ``Session``; on a 401 refreshes and retries once.

    Async clients only (``httpx.AsyncClient``); raises ``ReauthRequired`` like
    ``Session.access_token``.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Refused: the session is async; use an ``httpx.AsyncClient``."""
        raise RuntimeError("SessionAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._session.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            token = await self._session.refresh_after(token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
