"""WireGuard backends and the privileged helper.

``wg_backends`` knows nothing of policy, auth or Qt: it takes a validated ``TunnelSpec``
and brings a tunnel up or down with the platform backend (wg-quick, WireGuard for Windows,
NetworkManager). ``wg_backends.helper`` is the privileged process; unprivileged code talks
to it only through its IPC client. This package imports only the standard library and
small third-party libraries, never ``core``, ``app`` or ``controller``.
"""

__version__ = "0.1.0"  # kept equal to core.__version__ and pyproject's version
