"""The Qt tray application: a thin view on the engine (``core.engine.api.EngineAPI``).

Widgets subscribe to engine events (bridged to Qt signals) and call engine methods; no
business logic lives here. ``app`` may import ``core`` and PySide6/qasync; nothing else in
the project imports ``app``.

The tray is a client of the session's one engine: normally the agent's (``rustronaut
agent``), reached through the local API (``core.engine.localapi``), so quitting the tray
leaves the connection up; only where no agent can run does the tray host the engine and
serve the same API to the CLI (``link``: how the engine is held, what Quit does).

Map: ``main`` (start-up: single instance, qasync loop, tray first, then attach to the
agent, start it, or host the engine) → ``tray_app.TrayApp`` (composition root) =
``bridge.EngineBridge`` (engine events → Qt signals, GUI thread) + ``actions.Actions``
(every intent → one engine coroutine via ``core.aio.spawn``; windows created lazily) +
``tray.Tray`` (icon, tooltip, menu).
What is shown is computed by pure functions in ``presenter`` (labels, tooltip, menu
model) and ``notify`` (which notifications, rate-limited); ``icons`` holds the SVGs;
``windows/`` the main, posture, activity, settings, sign-in, about and break-glass
windows; ``autostart`` the per-OS start-at-login writers; ``single_instance`` the
per-user lock; ``qtcompat`` the guard against a known-broken PySide6 build.

Errors::

    EngineUnavailable (RuntimeError)   app.main: the engine cannot be created
    OSError                            app.autostart writers, passed through unchanged

Engine refusals (e.g. always-on without a reason) are caught in ``Actions`` and shown
to the employee in the engine's words (title, detail, next step) as a notification,
never raised into Qt.
"""
