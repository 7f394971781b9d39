"""Qt-free sessions: what each panel *does*, not how it looks.

A session holds a panel's state and runs its computations as plain Python (generators that a
GUI worker or the CLI iterate, functions, small dataclasses). ``diffusion_gui.gui`` binds widgets
to sessions; ``diffusion_gui.cli`` / ``commands`` call the same code headless. Nothing here
imports PySide6, pyqtgraph or ``diffusion_gui.gui`` (checked by import-linter, pyproject.toml).
"""
