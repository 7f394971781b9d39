"""Help for the main window: the keyboard-shortcut table (F1) and the About box."""
from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout

from .. import __version__


def shortcut_rows(win) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every action with a shortcut."""
    rows = []
    for a in (win.act_open, win.act_open_model, win.act_export, win.act_quit,
              *win._tab_actions, win.act_fullscreen, win.act_shortcuts):
        keys = a.shortcut().toString(QKeySequence.NativeText)
        if keys:
            rows.append(("Window", keys, a.text().replace("&", "").replace("\u2026", "")))
    for key, panel in win.panels.items():
        try:
            acts = panel.actions() if callable(getattr(panel, "actions", None)) else []
        except Exception:  # noqa: BLE001
            acts = []
        for a in acts or []:
            if isinstance(a, QAction):
                keys = ", ".join(s.toString(QKeySequence.NativeText) for s in a.shortcuts())
                if keys:
                    rows.append((getattr(panel, "title", key), keys, a.text().replace("&", "")))
    rows.append(("Window", "drag & drop", "an image file opens it; a model folder loads it"))
    return rows

def show_shortcuts(win):
    rows = "".join(f"<tr><td style='color:#666;padding-right:14px'>{html.escape(w)}</td>"
                   f"<td style='padding-right:14px'><b>{html.escape(k)}</b></td>"
                   f"<td>{html.escape(t)}</td></tr>" for w, k, t in shortcut_rows(win))
    dlg = QDialog(win)
    dlg.setWindowTitle("Keyboard shortcuts")
    text = QTextBrowser()
    text.setHtml(f"<table cellspacing='4'>{rows}</table>")
    buttons = QDialogButtonBox(QDialogButtonBox.Close)
    buttons.rejected.connect(dlg.close)
    lay = QVBoxLayout(dlg)
    lay.addWidget(text)
    lay.addWidget(buttons)
    dlg.resize(520, 460)
    win._keep_dialog(dlg)
    win.shortcuts_dialog = dlg
    dlg.show()

def show_about(win):
    box = QMessageBox(QMessageBox.Information, "About diffusion-gui",
                      f"<h3>diffusion-gui {__version__}</h3>"
                      "<p>A desktop explorer for denoising diffusion probabilistic models "
                      "(Ho, Jain &amp; Abbeel 2020): the forward process, the reverse process, "
                      "the loss and the variational bound, made visible.</p>"
                      "<p>Sample images and the built-in model carry their own licences, "
                      "listed in <tt>assets/</tt>.</p>", QMessageBox.Close, win)
    box.setModal(False)
    win._keep_dialog(box)
    win.about_box = box
    box.show()
