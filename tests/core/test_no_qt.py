"""The Qt-free layers import without loading Qt, pyqtgraph or our GUI package."""
import subprocess
import sys

CHECK = r"""
import importlib, sys
importlib.import_module("diffusion_gui.core")
import diffusion_gui.core.vlb, diffusion_gui.core.kl, diffusion_gui.core.sampling
loaded = ["diffusion_gui.core"]
for name in ("diffusion_gui.models", "diffusion_gui.export", "diffusion_gui.sessions",
             "diffusion_gui.commands", "diffusion_gui.cli"):
    importlib.import_module(name)
    loaded.append(name)
bad = sorted(m for m in sys.modules
             if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph")
             or m == "diffusion_gui.gui" or m.startswith("diffusion_gui.gui."))
print("LOADED", ",".join(loaded))
print("BAD", ",".join(bad))
"""


def test_core_models_export_do_not_import_qt():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in proc.stdout.splitlines())
    assert "diffusion_gui.core" in lines["LOADED"]
    assert lines["BAD"] == "", f"Qt-side modules loaded: {lines['BAD']}"
