"""The Qt binding must not leak references to None (PySide6 6.12.0 on Python 3.11 did: every
call of a method returning void dropped one, and a long session aborted with none_dealloc)."""
import sys

from PySide6.QtWidgets import QLabel


def test_void_calls_keep_none_refcount(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(20000):
        label.setText("x")
    after = sys.getrefcount(None)
    assert abs(after - before) < 100, f"None lost {before - after} references in 20000 calls"


def test_signal_emits_keep_true_refcount(qtbot):
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        changed = Signal(int)

    e = Emitter()
    got = []
    e.changed.connect(got.append)
    before = sys.getrefcount(True)
    for k in range(5000):
        e.changed.emit(k)
    assert len(got) == 5000
    assert abs(sys.getrefcount(True) - before) < 100
