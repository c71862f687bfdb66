"""The one place engine events enter Qt: ``EngineBridge`` re-emits them as signals.

Views take the bridge (and the engine for calls) in their constructor and only connect
to these signals, napari style. The engine calls subscribers on its loop thread, which
under qasync is the GUI thread; should a callback ever arrive from another thread, Qt's
automatic connection type queues the signal to the GUI thread, so slots always run there.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.engine.api import EngineAPI, Unsubscribe
from core.engine.state import Event, EventKind, Snapshot

__all__ = ["EngineBridge"]


class EngineBridge(QObject):
    """Subscribes to ``engine`` on construction; ``close()`` unsubscribes (idempotent).

    Signals carry the engine's frozen objects unchanged:
    ``event(Event)`` for every event; ``snapshot_changed(Snapshot)`` whenever the
    snapshot differs from the last one seen; ``decision(Event)``, ``notice(Event)`` and
    ``error(Event)`` for those kinds.
    """

    event = Signal(object)
    snapshot_changed = Signal(object)
    decision = Signal(object)
    notice = Signal(object)
    error = Signal(object)

    def __init__(self, engine: EngineAPI, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._snapshot: Snapshot = engine.snapshot
        self._unsubscribe: Unsubscribe | None = engine.subscribe(self._on_event)

    @property
    def snapshot(self) -> Snapshot:
        """The last snapshot seen (the engine's at construction, then each event's)."""
        return self._snapshot

    def _on_event(self, event: Event) -> None:
        self.event.emit(event)
        if event.snapshot != self._snapshot:
            self._snapshot = event.snapshot
            self.snapshot_changed.emit(event.snapshot)
        if event.kind is EventKind.DECISION:
            self.decision.emit(event)
        elif event.kind is EventKind.NOTICE:
            self.notice.emit(event)
        elif event.kind is EventKind.ERROR:
            self.error.emit(event)

    def close(self) -> None:
        """Stop receiving events. Idempotent."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
