"""``Session``: the signed-in state — login, tokens kept fresh, logout — and ``SessionAuth``.

The session owns the one copy of the tokens in memory and in the keyring (one keyring
item holding the whole ``TokenSet``, so a rotated refresh token replaces the old one in a
single atomic write). ``access_token()`` refreshes shortly before expiry; concurrent
callers share one refresh (single flight), and a refresh runs to completion even if its
caller is cancelled, so a rotated refresh token is never lost half-way. A refused refresh
clears the session and raises ``ReauthRequired`` — except when this computer's clock is far
off the provider's: then ``ClockSkewError`` (code ``clock_skew``) is raised, the tokens are
kept, and further refreshes wait ``CLOCK_RETRY_S`` (one failure, not a storm), so setting
the clock recovers the session without a new sign-in.

Logout revokes the tokens where they were issued (the issuer and client id stored with
them, whatever is configured now) and, when ``end_provider_session``, opens the provider's
logout page (RP-initiated logout) so the browser session at the provider ends too.
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
from core.auth.errors import AuthError, ClockSkewError, ReauthRequired
from core.auth.flows import DevicePrompt, OidcClient, OpenUrl
from core.auth.idtoken import IdTokenClaims
from core.auth.secrets import TOKENS, SecretStore
from core.auth.tokens import TokenSet

__all__ = ["CLOCK_RETRY_S", "Session", "SessionAuth"]

#: After a refresh failed because of this computer's clock, the next try waits this long.
CLOCK_RETRY_S = 30.0

_log = logging.getLogger(__name__)


class Session:
    """Tokens of the signed-in user for one ``OidcClient``. Loop thread only.

    ``refresh_margin_s``: refresh when the access token has less than this left (at most
    half its lifetime, so a short-lived token is not refreshed at every use).
    ``end_provider_session``: logout also ends the provider's browser session (setting
    ``end_provider_session``). ``clock``: this computer's time (epoch s), injectable.
    """

    def __init__(
        self,
        client: OidcClient,
        store: SecretStore,
        *,
        refresh_margin_s: float = 60.0,
        end_provider_session: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.end_provider_session = end_provider_session
        self._margin = refresh_margin_s
        self._clock = clock
        self._monotonic = monotonic
        self._tokens: TokenSet | None = None
        self._refresh: asyncio.Task[TokenSet | AuthError] | None = None
        self._clock_failure: tuple[float, ClockSkewError] | None = None

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

    @property
    def renewable(self) -> bool | None:
        """Whether the session renews itself (holds a refresh token); ``None`` signed out."""
        return self._tokens.renewable if self._tokens else None

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

        The keyring is checked first (present and unlocked), so the user never completes
        a login whose tokens cannot be kept: the browser is not opened when it fails. On
        any failure nothing is stored and the previous session stays.
        """
        await in_thread(self.store.check_usable)
        tokens = await self.client.login_browser(time_limit_s=time_limit_s, open_url=open_url)
        await self._store(tokens)
        return tokens.identity

    async def login_device(
        self, on_prompt: DevicePrompt, *, time_limit_s: float | None = None
    ) -> IdTokenClaims:
        """Device-code sign-in (see ``OidcClient.login_device``); stores the tokens.

        The keyring is checked first, before any code is requested or shown.
        """
        await in_thread(self.store.check_usable)
        tokens = await self.client.login_device(on_prompt, time_limit_s=time_limit_s)
        await self._store(tokens)
        return tokens.identity

    async def logout(self, *, open_url: OpenUrl | None = None) -> bool:
        """Revoke the tokens where they were issued, end the provider's browser session
        (if ``end_provider_session`` and offered) and clear them. Idempotent.

        The stored tokens are revoked at the issuer and client id stored with them, even
        when the settings now name another issuer. ``open_url`` opens the provider's
        logout page (default: the client's browser). Returns whether the provider
        acknowledged the revocation. The local tokens are removed even when revocation
        fails; raises ``SecretStoreError`` if the keyring cannot delete them.
        """
        tokens = self._tokens
        if tokens is None:
            tokens = await self._stored_any()
        revoked = False
        if tokens is not None:
            own = (tokens.issuer, tokens.client_id) != (
                self.client.issuer,
                self.client.config.client_id,
            )
            client = self.client.for_issuer(tokens.issuer, tokens.client_id) if own else self.client
            try:
                revoked = await client.revoke(tokens)
                if self.end_provider_session:
                    await client.end_session(tokens, open_url=open_url)
            finally:
                if own:
                    await client.aclose()
        self._tokens = None
        self._clock_failure = None
        await in_thread(self.store.delete, TOKENS)
        return revoked

    async def _stored_any(self) -> TokenSet | None:
        """The stored tokens whatever issuer they are for (to revoke them), or None."""
        try:
            raw = await in_thread(self.store.get, TOKENS)
            return TokenSet.from_json(raw) if raw is not None else None
        except Exception:
            _log.warning("stored tokens could not be read for logout", exc_info=True)
            return None

    async def _store(self, tokens: TokenSet) -> None:
        await in_thread(self.store.set, TOKENS, tokens.to_json().decode())
        self._tokens = tokens
        self._clock_failure = None

    # -- access tokens ---------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token, refreshed first if it expires within the margin.

        Raises ``ReauthRequired`` when signed out, the session ended without a refresh
        token, or the refresh is refused (the stored tokens are then cleared);
        ``ClockSkewError`` when a refresh failed because of this computer's clock and
        ``ProviderError`` on transient failures (tokens kept in both cases).
        """
        tokens = self._tokens
        if tokens is None:
            raise ReauthRequired("You are not signed in.")
        now = self._clock()
        if not tokens.renewable:
            # Nothing to renew with: the token is used to its last second, then the
            # session has ended (never cut short by the refresh margin).
            if now < tokens.expires_at:
                return tokens.access_token
            await self._forget()
            raise ReauthRequired(
                "The sign-in has ended: the identity provider gave no refresh token, so it "
                "could not renew itself."
            )
        # Issued "in the future": this computer's clock went back since (it was ahead
        # then), so expires_at is too late by as much; renew rather than trust it.
        clock_went_back = tokens.issued_at is not None and now < tokens.issued_at - 60
        if now < tokens.expires_at - self._margin_for(tokens) and not clock_went_back:
            return tokens.access_token
        return (await self._refreshed()).access_token

    def _margin_for(self, tokens: TokenSet) -> float:
        if tokens.issued_at is None:
            return self._margin
        return min(self._margin, max(0.0, tokens.expires_at - tokens.issued_at) / 2)

    async def _forget(self) -> None:
        self._tokens = None
        try:
            await in_thread(self.store.delete, TOKENS)
        except Exception:
            _log.warning("could not remove ended tokens from the keyring", exc_info=True)

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
        failure = self._clock_failure
        if failure is not None and self._monotonic() - failure[0] < CLOCK_RETRY_S:
            raise failure[1]  # the same failure, not another round trip to the provider
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
            await self._forget()
            raise
        except ClockSkewError as exc:
            # The tokens stay: once the clock is set, the refresh token may still work.
            self._clock_failure = (self._monotonic(), exc)
            raise
        self._clock_failure = None
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
