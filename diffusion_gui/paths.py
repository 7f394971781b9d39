"""Where the shipped assets live, in a source checkout and in an installed wheel alike."""
from __future__ import annotations

from pathlib import Path


def assets_dir() -> Path:
    """``assets/``: inside the package when installed (``diffusion_gui/assets``), else the repo's."""
    here = Path(__file__).resolve().parent
    for cand in (here / "assets", here.parent / "assets"):
        if cand.is_dir():
            return cand
    return here.parent / "assets"
