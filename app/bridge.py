"""The one place engine events enter Qt: ``EngineBridge`` re-emits them as signals.

Views take the bridge (and the engine for calls) in their constructor and only connect
to these signals, napari style. The engine calls subscribers on its loop thread, which
under qasync is the GUI thread; should a callback ever arrive from another thread, Qt's
automatic connection type queues the signal to the GUI thread, so slots always run there.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.plain import clean_snapshot
from core.engine.api import EngineAPI, Unsubscribe
from core.engine.state import Event, EventKind, Snapshot

__all__ = ["EngineBridge"]


class EngineBridge(QObject):
    """Re-emits one engine's events as Qt signals; the engine may arrive later.

    Created without an engine, the bridge is *starting*: views render a "Starting…" state
    while ``app.main`` imports and builds the engine after the tray is already visible.
    ``attach(engine)`` subscribes (once); ``close()`` unsubscribes (idempotent).

    ``snapshot`` and ``snapshot_changed(Snapshot)`` carry the engine's snapshot with every
    string from elsewhere cleaned (``app.plain.clean_snapshot``: control, bidi and
    invisible characters escaped), so no view can show one raw; events are forwarded
    unchanged (their consumers clean what they show).
    ``engine_event(Event)`` for every event; ``snapshot_changed(Snapshot)`` whenever the
    snapshot differs from the last one seen (and once on attach); ``decision(Event)``,
    ``notice(Event)`` and ``error(Event)`` for those kinds; ``settings_changed()`` when the
    effective settings changed (a ``SETTINGS`` event: re-read ``engine.settings()``);
    ``attached(engine)``; ``lost_changed(bool)``.

    ``mark_lost()`` says the engine went away (the agent stopped): the bridge drops it,
    ``lost`` is True and views show "Rustronaut is not running" until ``attach`` gives
    them a new engine (Restart).
    """

    engine_event = Signal(object)
    snapshot_changed = Signal(object)
    decision = Signal(object)
    notice = Signal(object)
    error = Signal(object)
    settings_changed = Signal()
    attached = Signal(object)
    lost_changed = Signal(bool)

    def __init__(self, engine: EngineAPI | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine: EngineAPI | None = None
        self._snapshot = Snapshot()
        self._raw = self._snapshot  # the engine's own, to tell a change cheaply
        self._unsubscribe: Unsubscribe | None = None
        self._lost = False
        if engine is not None:
            self.attach(engine)

    @property
    def engine(self) -> EngineAPI | None:
        """The engine, or None while starting."""
        return self._engine

    @property
    def starting(self) -> bool:
        """True until an engine is attached (and not because it was lost)."""
        return self._engine is None and not self._lost

    @property
    def lost(self) -> bool:
        """True after ``mark_lost`` until an engine is attached again."""
        return self._lost

    @property
    def snapshot(self) -> Snapshot:
        """The last snapshot seen, cleaned (a default one while starting)."""
        return self._snapshot

    def attach(self, engine: EngineAPI) -> None:
        """Subscribe to ``engine`` and announce its snapshot.

        RuntimeError if an engine is attached already (``mark_lost`` drops it first).
        """
        if self._engine is not None:
            raise RuntimeError("EngineBridge already has an engine")
        self._engine = engine
        self._raw = engine.snapshot
        self._snapshot = clean_snapshot(self._raw)
        self._unsubscribe = engine.subscribe(self._on_event)
        was_lost, self._lost = self._lost, False
        self.attached.emit(engine)
        if was_lost:
            self.lost_changed.emit(False)
        self.snapshot_changed.emit(self._snapshot)
        self.settings_changed.emit()

    def mark_lost(self) -> None:
        """The engine went away: drop it and show "not running". Idempotent."""
        if self._lost:
            return
        self.close()
        self._engine = None
        self._lost = True
        self.lost_changed.emit(True)
        self.snapshot_changed.emit(self._snapshot)

    def _on_event(self, event: Event) -> None:
        self.engine_event.emit(event)
        if event.snapshot != self._raw:
            self._raw = event.snapshot
            self._snapshot = clean_snapshot(event.snapshot)
            self.snapshot_changed.emit(self._snapshot)
        if event.kind is EventKind.DECISION:
            self.decision.emit(event)
        elif event.kind is EventKind.NOTICE:
            self.notice.emit(event)
        elif event.kind is EventKind.ERROR:
            self.error.emit(event)
        elif event.kind is EventKind.SETTINGS:
            self.settings_changed.emit()

    def close(self) -> None:
        """Stop receiving events. Idempotent."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
