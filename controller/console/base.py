"""The contract between the console's core (``web``) and its page modules.

Each page module exposes ``routes(console: Console) -> list[BaseRoute]`` (paths relative
to ``/console``); ``web.ConsoleApp`` implements ``Console`` and mounts them all. A page
handler starts with ``admin = await console.admin(request)`` (which raises ``SignInNeeded``
for a browser without a valid admin session; the app turns it into a redirect to the
sign-in page, or a 401 for fetch/JSON requests), checks ``console.check_csrf(request,
form, admin)`` before any change, records every change with ``console.audit(...)``, and
answers with ``console.render(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request
    from starlette.responses import Response

    from controller.service import ControllerService

__all__ = ["Admin", "Console", "CsrfError", "SignInNeeded"]


@dataclass(frozen=True, slots=True)
class Admin:
    """A signed-in administrator, as their console session knows them."""

    #: stable user id (the provider's subject or email, as the API's ``Identity.user_id``)
    user_id: str
    email: str
    name: str
    groups: tuple[str, ...]
    #: the session's CSRF token: a hidden ``csrf`` field in every form, the
    #: ``X-CSRF-Token`` header on fetch requests
    csrf: str
    #: SHA-256 hex of the session cookie (the row key; never the cookie itself)
    session_hash: str


class SignInNeeded(Exception):
    """No valid admin session: the app redirects to sign-in (or answers 401 to fetch)."""


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token or from another origin:
    the app answers 403 and changes nothing."""


class Console(Protocol):
    """What a page module may use. Implemented by ``controller.console.web.ConsoleApp``."""

    #: the controller's service (storage, policy, devices, events)
    service: ControllerService

    async def admin(self, request: Request) -> Admin:
        """The signed-in admin of this request; raises ``SignInNeeded``."""
        ...

    def check_csrf(self, request: Request, form: FormData | None, admin: Admin) -> None:
        """Refuse (``CsrfError``) a change whose token (form field ``csrf`` or header
        ``X-CSRF-Token``) is not the session's, or whose ``Origin``/``Sec-Fetch-Site`` says
        it came from another site."""
        ...

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        admin: Admin | None,
        *,
        status: int = 200,
        page: str = "",
    ) -> Response:
        """A page from ``templates/<template>`` extending ``base.html`` (autoescaped), with
        ``admin``, ``csrf``, ``page`` (the nav entry to highlight) and ``context`` in scope."""
        ...

    def audit(self, admin: Admin, action: str, detail: str, *, device_id: str = "") -> None:
        """Record an admin change in the audit log (kind ``admin:<action>``); ``device_id``
        names the device it concerns (empty: none)."""
        ...
