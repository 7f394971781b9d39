import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "test")  # the GUI keeps its QSettings apart

import pytest


@pytest.fixture(autouse=True)
def _torch_seed():
    """Every test starts from the same global RNG state (tests pass generators where it matters)."""
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    yield
