"""Shared state of the explorer: the current image, the current model, the forward panel's t.

Panels talk through this object's signals, never to each other. Loading runs off the GUI thread;
a failed load leaves the previous image or model in place and emits ``error``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal

from .settings_io import SETTINGS_VERSION, make_settings  # noqa: F401 - re-exported
from .workers import Job, JobSlot, call_in_background, error_text

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
    show_panel = Signal(str)            # a panel asks for the tab of another (a PANELS key)
    device_changed = Signal()           # the devices of this machine are known, or the choice changed

    def __init__(self, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings or make_settings()
        self.image: np.ndarray | None = None
        self.image_path: str | None = None
        self.model = None
        self.model_spec: str | None = None
        self.forward_t: int = 0
        self.device_name = str(self.settings.value("device", "auto") or "auto")
        self.dtype_name = str(self.settings.value("dtype", "float32") or "float32")
        self.devices: list[str] = []    # this machine's, best first (core.devices); [] until detected
        self._jobs: list[Job] = []
        self._image_job = JobSlot(memory_hint="the image is too large to load")

    # ---------------------------------------------------------------- image
    def open_image(self, path, max_side: int = 512, *, wait: bool = True) -> bool | None:
        """Decode ``path`` in the background (Pillow, at most ``max_side`` px) and make it the
        current image: ``image_changed`` on success; ``error`` (and the previous image kept) on
        failure. ``wait=True`` (scripts, tests) runs the event loop until it is done and returns
        whether it worked; ``wait=False`` (the window's menus, drag and drop) returns None at once.
        A newer request supersedes one still decoding."""
        from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
        outcome: list[bool] = []
        loop = QEventLoop() if wait else None

        def done(img):
            arr = np.asarray(img, dtype=np.uint8)
            self.image = arr if arr.ndim == 3 else arr[:, :, None]
            self.image_path = str(path)
            self.add_recent(str(path))
            self.settings.setValue("last_folder", str(Path(path).resolve().parent))
            self.image_changed.emit()
            self.status.emit(f"Opened {Path(path).name} ({img.width}x{img.height})")
            finish(True)

        def failed(msg):
            self.error.emit("Cannot open image", msg)
            finish(False)

        def finish(ok):
            outcome.append(ok)
            if loop is not None:
                loop.quit()

        job = self._image_job.start(lambda: _decode(path, max_side), background=True,
                                    on_done=done, on_failed=failed)
        if loop is None:
            return None
        # the outcome quits the loop; a watch quits it too once the thread has ended (a newer
        # request superseded this one: its outcome never comes)
        watch = QTimer(interval=20)
        watch.timeout.connect(lambda: None if job.is_running() else loop.quit())
        watch.start()
        while not outcome and job.is_running():
            loop.exec()
        watch.stop()
        if not outcome:                 # ended, its queued outcome not delivered yet
            QCoreApplication.sendPostedEvents()
            QCoreApplication.processEvents()
        return bool(outcome and outcome[0])

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
                                      error_text=error_text, abandonable=True))

    # ---------------------------------------------------------------- device
    def detect_devices(self):
        """List this machine's devices in the background (torch must be importable); a
        remembered device that is not here falls back to ``auto``. Emits ``device_changed``."""
        from ..core.devices import available_devices

        def done(found):
            self.devices = list(found)
            if self.device_name not in ("auto", *self.devices):
                self.status.emit(f"Device {self.device_name} is not available here: using auto "
                                 f"({self.devices[0]})")
                self.device_name = "auto"
            self._fit_dtype()
            self.device_changed.emit()

        self._keep(call_in_background(available_devices, on_done=done, error_text=error_text,
                                      abandonable=True))

    def set_device(self, name: str | None = None, dtype: str | None = None):
        """Run the networks on ``name`` (``auto``, ``cpu``, ``cuda:N``, ``mps``) in ``dtype``
        (``float32``, ``float16``, ``bfloat16``) from the next run on; remembered."""
        if name is not None:
            self.device_name = str(name)
            self.settings.setValue("device", self.device_name)
        if dtype is not None:
            self.dtype_name = str(dtype)
            self.settings.setValue("dtype", self.dtype_name)
        self._fit_dtype()
        self.device_changed.emit()

    def _fit_dtype(self):
        """float16 on the CPU (about 50x slower there, refused by core.devices) becomes float32."""
        if self.device_in_use() == "cpu" and self.dtype_name == "float16":
            self.dtype_name = "float32"
            self.settings.setValue("dtype", "float32")
            self.status.emit("float16 is for GPUs: the networks run in float32 on the CPU")

    def device_in_use(self) -> str:
        """The device a run starts on: the choice, with ``auto`` resolved once devices are known."""
        if self.device_name == "auto" and self.devices:
            return self.devices[0]
        return self.device_name

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
        self._image_job.shutdown()


def _decode(path, max_side: int):
    """A PIL image of ``path`` at most ``max_side`` px (in a worker thread)."""
    from ..core.images import read_image, resize_image
    return resize_image(read_image(path), max_side=max_side)
