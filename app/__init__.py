"""The Qt tray application: a thin view on ``core.engine.Engine``.

Widgets subscribe to engine events (bridged to Qt signals) and call engine methods; no
business logic lives here. ``app`` may import ``core`` and PySide6/qasync; nothing else in
the project imports ``app``.
"""
