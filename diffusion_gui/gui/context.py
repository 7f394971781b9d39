"""Shared state of the explorer: the current image, the current model, the forward panel's t.

Panels talk through this object's signals, never to each other. Loading runs off the GUI thread;
a failed load leaves the previous image or model in place and emits ``error``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal

from .settings_io import SETTINGS_VERSION, make_settings  # noqa: F401 - re-exported
from .workers import Job, call_in_background

MAX_RECENT = 8


class AppContext(QObject):
    """``image``: uint8 ``[H, W, C]`` (C = 1 or 3) as loaded, at most ``max_side`` px.
    ``model``: a :class:`diffusion_gui.models.loader.LoadedModel` or None while loading."""

    image_changed = Signal()
    model_changed = Signal()
    model_loading = Signal(str)
    forward_t_changed = Signal(int)     # the paper's t shown in the forward panel
    error = Signal(str, str)            # (title, one-line message)
    status = Signal(str)
    recent_changed = Signal()

    def __init__(self, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings or make_settings()
        self.image: np.ndarray | None = None
        self.image_path: str | None = None
        self.model = None
        self.model_spec: str | None = None
        self.forward_t: int = 0
        self._jobs: list[Job] = []

    # ---------------------------------------------------------------- image
    def open_image(self, path, max_side: int = 512) -> bool:
        """Read ``path`` (GUI thread: images are small and Pillow is fast). False + ``error`` on failure."""
        from ..core.images import ImageLoadError, read_image, resize_image
        try:
            img = resize_image(read_image(path), max_side=max_side)
            arr = np.asarray(img, dtype=np.uint8)
        except ImageLoadError as e:
            self.error.emit("Cannot open image", str(e))
            return False
        except MemoryError:
            self.error.emit("Cannot open image", f"{path}: too large to load")
            return False
        self.image = arr if arr.ndim == 3 else arr[:, :, None]
        self.image_path = str(path)
        self.add_recent(str(path))
        self.settings.setValue("last_folder", str(Path(path).resolve().parent))
        self.image_changed.emit()
        self.status.emit(f"Opened {Path(path).name} ({img.width}x{img.height})")
        return True

    # ---------------------------------------------------------------- model
    def load_model(self, spec: str):
        """Load in the background; ``model_changed`` on success, ``error`` (and the old model kept) on failure."""
        from ..models.loader import load_model

        def done(model):
            self.model, self.model_spec = model, spec
            self.settings.setValue("model", spec)
            self.model_changed.emit()
            self.status.emit(f"Model {model.name}: {model.sample_size}px, {model.in_channels} ch, "
                             f"T={model.num_timesteps}")

        def failed(msg):
            self.error.emit("Cannot load model", msg)
            self.model_changed.emit()

        self.model_loading.emit(spec)
        self._keep(call_in_background(lambda: load_model(spec), on_done=done, on_failed=failed,
                                      error_text=_model_error_text, abandonable=True))

    def _keep(self, job: Job):
        self._jobs = [j for j in self._jobs if j.is_running()] + [job]

    # ---------------------------------------------------------------- forward t
    def set_forward_t(self, t: int):
        if t != self.forward_t:
            self.forward_t = int(t)
            self.forward_t_changed.emit(self.forward_t)

    # ---------------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        v = self.settings.value("recent_files", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or []) if isinstance(x, str)][:MAX_RECENT]

    def add_recent(self, path: str):
        r = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent_files", r[:MAX_RECENT])
        self.recent_changed.emit()

    def shutdown(self):
        """Stop and join every background job of the context."""
        for j in self._jobs:
            j.detach()          # a model that arrives after the shutdown is not installed
            j.stop()
        self._jobs.clear()


def _model_error_text(e: BaseException):
    from ..models.errors import ModelLoadError
    return str(e) if isinstance(e, ModelLoadError) else None
