"""Fixtures shared by the GUI tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def ctx(tmp_path):
    """An :class:`AppContext` with its settings file in the test's tmp folder; shut down after."""
    from PySide6.QtCore import QSettings

    from diffusion_gui.gui.context import AppContext
    c = AppContext(settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    yield c
    c.shutdown()


@pytest.fixture
def errors(ctx):
    """``[(title, message)]`` of every ``ctx.error`` emitted during the test."""
    seen = []
    ctx.error.connect(lambda title, msg: seen.append((title, msg)))
    return seen
