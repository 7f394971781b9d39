"""The Train panel at the window's close: ask whether to save a running or unsaved model, save
it synchronously, or discard it (the run folders go when the panel shuts down, once the worker
is joined: another panel may still keep the window open, and a new run cancels the discard).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from ....errors import ExportError, user_message
from ....sessions.training import export_model


def ask_save_on_close(p) -> str:
    """"save", "discard" or "cancel", asked in a message box over panel ``p``."""
    text = ("Training is running. Save the model before closing?" if p.state != "idle" else
            "The trained model has not been saved. Save it before closing?")
    box = QMessageBox(QMessageBox.Question, "Save the trained model?", text,
                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, p)
    box.setDefaultButton(QMessageBox.Save)
    r = box.exec()
    return {QMessageBox.Save: "save", QMessageBox.Discard: "discard"}.get(r, "cancel")


def maybe_close(p) -> bool:
    """Offer to save a running or unsaved model of panel ``p`` (its ``ask_save_on_close`` and
    ``choose_save_dir``, patched in tests). False keeps the window open."""
    if not p.is_unsaved():
        return True
    answer = p.ask_save_on_close()
    if answer != "save":
        p._discard_at_shutdown = answer == "discard"
        return answer == "discard"
    dest = p.choose_save_dir()
    if not dest:
        return False
    try:
        p.save_now(dest)
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        QMessageBox.warning(p, "Cannot save the model", msg)
        return False
    return True


def save_now(p, dest: str) -> str:
    """Save synchronously: stop a running run at its current step, then copy. Raises
    :class:`~diffusion_gui.errors.ExportError` if the model could not be written."""
    job, run = p._train.job, p._run
    if job is not None and p.state != "idle":
        run.request(("checkpoint",), ("export", dest), ("stop",))
        job.worker.resume()
        job.thread.wait()
        for e in run.drain_events():
            if e["kind"] == "error":
                raise ExportError(e["message"])
        if not (Path(dest) / "model_index.json").is_file():
            raise ExportError(f"{dest}: the model was not written")
    else:
        export_model(run.run_dir, dest)
    p._on_saved(str(dest), p.session.step)
    return str(dest)
