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
