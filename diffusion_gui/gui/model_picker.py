"""Choose the current model (built-in, a folder, a hub id from the local cache) and show its facts.

The picker only asks :class:`AppContext` to load (``ctx.load_model``, off the GUI thread) and
follows ``ctx.model_loading`` / ``ctx.model_changed``; several pickers stay in step.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QFormLayout, QInputDialog, QLabel, QVBoxLayout, QWidget

from .workers import call_in_background

MAX_RECENT_MODELS = 6
_OPEN_FOLDER = "\x00open-folder"
_HUB_ID = "\x00hub-id"


def human_count(n: int) -> str:
    """1234567 -> '1.23 M'."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)


def model_facts(info: dict) -> list[tuple[str, str]]:
    """``LoadedModel.info()`` -> rows of (label, text) for display."""
    ch = int(info.get("channels", 0))
    pred = info.get("prediction", "epsilon")
    return [
        ("Resolution", f"{info['resolution']} × {info['resolution']} px"),
        ("Channels", f"{ch} ({'grey' if ch == 1 else 'RGB' if ch == 3 else 'other'})"),
        ("Timesteps T", str(info["timesteps"])),
        ("β schedule", str(info["schedule"])),
        ("Variance", str(info["variance"])),
        ("Predicts", {"epsilon": "ε (noise)", "sample": "x₀", "v_prediction": "v"}.get(pred, str(pred))),
        ("Parameters", human_count(int(info["parameters"]))),
    ]


class ModelPicker(QWidget):
    """A combo box of models plus a small table of the current model's facts."""

    #: a spec was chosen by the user (the load has been requested)
    chosen = Signal(str)

    def __init__(self, ctx, parent=None):
        super().__init__(parent)
        self.ctx = ctx
        self._cached: list[str] = []
        self._scan_job = None
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(14)
        self.combo.setToolTip("Built-in models, models in the local Hugging Face cache and model "
                              "folders you opened. Loading happens in the background.")
        self.combo.activated.connect(self._on_activated)
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.facts = QFormLayout()
        self.facts.setContentsMargins(0, 0, 0, 0)
        self.facts.setHorizontalSpacing(10)
        self.facts.setVerticalSpacing(2)
        self._fact_labels: dict[str, QLabel] = {}
        for label in ("Resolution", "Channels", "Timesteps T", "β schedule", "Variance", "Predicts",
                      "Parameters"):
            v = QLabel("–")
            v.setTextInteractionFlags(Qt.TextSelectableByMouse)
            self._fact_labels[label] = v
            name = QLabel(label)
            name.setEnabled(False)  # a dimmer colour for the keys
            self.facts.addRow(name, v)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(self.combo)
        lay.addWidget(self.state)
        lay.addLayout(self.facts)
        ctx.model_loading.connect(self._on_loading)
        ctx.model_changed.connect(self._on_model_changed)
        self._populate()
        self._on_model_changed()
        self._scan_cache()

    # ---------------------------------------------------------------- entries
    def _builtins(self) -> list[str]:
        from ..models.registry import builtin_names
        try:
            return builtin_names()
        except OSError:
            return []

    def recent_folders(self) -> list[str]:
        v = self.ctx.settings.value("recent_models", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or []) if isinstance(x, str) and x][:MAX_RECENT_MODELS]

    def _add_recent(self, folder: str):
        r = [folder] + [p for p in self.recent_folders() if p != folder]
        self.ctx.settings.setValue("recent_models", r[:MAX_RECENT_MODELS])

    def _populate(self):
        current = self.ctx.model_spec
        self.combo.blockSignals(True)
        self.combo.clear()
        seen = set()

        def add(text, spec, tip=""):
            if spec in seen:
                return
            seen.add(spec)
            self.combo.addItem(text, spec)
            if tip:
                self.combo.setItemData(self.combo.count() - 1, tip, Qt.ToolTipRole)

        for name in self._builtins():
            add(f"{name}  (built-in)", name)
        for repo in self._cached:
            add(f"{repo}  (HF cache)", repo)
        for folder in self.recent_folders():
            add(f"{Path(folder).name}  (folder)", folder, folder)
        if current and current not in seen:
            add(Path(current).name if Path(current).is_dir() else current, current, current)
        elif not current and self.ctx.model is not None:   # set directly, not through a spec
            add(str(getattr(self.ctx.model, "name", "model")), None)
        if self.combo.count() == 0:
            self.combo.addItem("(no model yet)", None)
        self.combo.insertSeparator(self.combo.count())
        self.combo.addItem("Open model folder…", _OPEN_FOLDER)
        self.combo.addItem("Hub id from the local cache…", _HUB_ID)
        self._select(current)
        self.combo.blockSignals(False)

    def _select(self, spec):
        k = self.combo.findData(spec) if spec else -1
        self.combo.setCurrentIndex(max(k, 0))

    def _scan_cache(self):
        """List hub models of the local cache in the background (it walks the disk)."""
        from ..models.registry import list_models

        def done(rows):
            self._cached = [r["name"] for r in rows if r.get("kind") == "hf-cache"]
            if self._cached:
                self._populate()

        self._scan_job = call_in_background(list_models, on_done=done, on_failed=lambda m: None,
                                            abandonable=True)

    # ---------------------------------------------------------------- user actions
    def _on_activated(self, index: int):
        spec = self.combo.itemData(index)
        if spec == _OPEN_FOLDER:
            start = self.ctx.settings.value("last_model_folder", str(Path.home()))
            folder = QFileDialog.getExistingDirectory(self, "Open a diffusers model folder",
                                                      str(start))
            if not folder:
                self._select(self.ctx.model_spec)
                return
            self.ctx.settings.setValue("last_model_folder", str(Path(folder).parent))
            self._add_recent(folder)
            self.load(folder)
        elif spec == _HUB_ID:
            text, ok = QInputDialog.getText(
                self, "Hub id", "Model id in the local Hugging Face cache (e.g. google/ddpm-cifar10-32).\n"
                                "Nothing is downloaded; use `hf download ID` first.")
            if not ok or not text.strip():
                self._select(self.ctx.model_spec)
                return
            self.load(text.strip())
        elif spec:
            if spec != self.ctx.model_spec or self.ctx.model is None:
                self.load(spec)

    def load(self, spec: str):
        """Ask the context to load ``spec`` in the background."""
        self.chosen.emit(spec)
        self.ctx.load_model(spec)

    # ---------------------------------------------------------------- context
    def _on_loading(self, spec: str):
        self.state.setText(f"Loading {spec}…")
        self.state.setVisible(True)
        self.combo.setEnabled(False)

    def _on_model_changed(self):
        self.combo.setEnabled(True)
        m = self.ctx.model
        if self.ctx.model_spec and Path(str(self.ctx.model_spec)).is_dir() \
                and str(self.ctx.model_spec) not in self._builtins():
            self._add_recent(str(self.ctx.model_spec))
        self._populate()
        if m is None:
            self.state.setText("No model loaded: choose one above.")
            self.state.setVisible(True)
            for v in self._fact_labels.values():
                v.setText("–")
            return
        info = m.info()
        self.state.setText("")
        self.state.setToolTip(str(info.get("source", "")))
        for label, text in model_facts(info):
            self._fact_labels[label].setText(text)
        self.state.setVisible(bool(getattr(m, "warnings", None)))
        if getattr(m, "warnings", None):
            self.state.setText("⚠ " + "; ".join(str(w) for w in m.warnings))

    def shutdown(self):
        if self._scan_job is not None:
            self._scan_job.detach()
            self._scan_job.stop(timeout_ms=None)
            self._scan_job = None
