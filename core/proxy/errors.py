"""Errors of the proxy package.

```
ProxyError                      base of everything this package raises
├── DestinationError            a destination that cannot be normalised (bad name/IP/port)
├── ProxyConfigError            bad input to the public API (PAC targets, forwards, limits)
└── ProxyStartError             a listener could not be opened (port in use, no loopback)
```

Protocol errors from clients are never raised out of the server: the sans-IO parsers
return them as ``Fail`` actions and the server answers the client with the matching
protocol refusal.
"""

from __future__ import annotations

from core.errors import UserFacingError
from core.i18n import QT_TRANSLATE_NOOP

__all__ = ["DestinationError", "ProxyConfigError", "ProxyError", "ProxyStartError"]


class ProxyError(UserFacingError):
    """Base class of the proxy package's errors."""

    title = QT_TRANSLATE_NOOP("core.proxy.errors", "The local proxy has a problem")


class DestinationError(ProxyError, ValueError):
    """A destination (host or port) that cannot be normalised; the message says why."""

    title = QT_TRANSLATE_NOOP("core.proxy.errors", "Not a valid destination")
    next_step = QT_TRANSLATE_NOOP(
        "core.proxy.errors", "Check the host name and port, then try again."
    )
    code = "bad_request"


class ProxyConfigError(ProxyError, ValueError):
    """Invalid configuration handed to the proxy; the previous configuration is kept."""


class ProxyStartError(ProxyError, OSError):
    """A listener could not be opened (for example the port is in use)."""

    title = QT_TRANSLATE_NOOP("core.proxy.errors", "The local proxy could not start")
    next_step = QT_TRANSLATE_NOOP(
        "core.proxy.errors",
        "Another program may use the proxy port: close it, or choose another port "
        "(rustronaut config set proxy_port PORT), then connect again.",
    )
