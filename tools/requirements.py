"""Print the project's requirements from pyproject.toml, one a line (a pip requirements file).

``python tools/requirements.py --without PySide6-Essentials pyqtgraph --extra test`` gives the
dependencies less the Qt ones, plus the ``test`` extra (the Makefile's Qt-free virtualenv).
torch is left out: the Makefile installs it first (see TORCH there).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--without", nargs="*", default=[])
    ap.add_argument("--extra", nargs="*", default=[])
    args = ap.parse_args()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in args.extra:
        reqs += project["optional-dependencies"][extra]
    skip = {n.lower() for n in args.without} | {"torch"}
    print("\n".join(r for r in reqs if _name(r) not in skip))


if __name__ == "__main__":
    main()
