"""Guards against known-broken Qt bindings; each is detected, never assumed.

PySide6 6.12.0 on Python 3.11 drops a reference to the returned object of every call
that returns ``None`` (e.g. ``QLabel.setText``, ``beginInsertRows``) and to the bool of
every ``Signal.emit``; after a few thousand calls the interpreter aborts with
"none_dealloc"/"bool_dealloc". 6.11.3 is sound. ``binding_leaks()`` probes for this so
start-up can log it loudly and a test fails CI if such a binding is installed. Any thread
with a ``QApplication`` or without (the probe needs no widgets).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal

__all__ = ["binding_leaks"]


class _Probe(QObject):
    sig = Signal()


def binding_leaks(rounds: int = 64) -> list[str]:
    """Names of the reference leaks found ("None", "True"); empty for a sound binding.

    The probe itself costs at most ``rounds`` references, far below what would crash.
    """
    found = []
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(rounds):
        timer.setInterval(1)  # returns None
    if before - sys.getrefcount(None) >= rounds // 2:
        found.append("None")
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.sig.emit()
    if before - sys.getrefcount(True) >= rounds // 2:
        found.append("True")
    return found
