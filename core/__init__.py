"""Rustronaut's UI-free engine.

Everything the client does without a screen lives here: settings (with MDM), sign-in
(``core.auth``), device posture (``core.posture``), the signed policy and its evaluation
(``core.policy``), the local proxy (``core.proxy``), the controller client, the helper
client and the ``Engine`` that owns the session, plus the ``rustronaut`` CLI. ``core``
never imports Qt (a test enforces it); it may import ``wg_backends`` for the
``TunnelSpec`` model and the helper protocol, never the other way round.
"""

__version__ = "0.1.0"
