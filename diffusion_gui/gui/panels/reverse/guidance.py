"""The Reverse panel's class and guidance controls, and the measured effect of guidance.

For a class-conditional model (``LoadedModel.classes``): which class each sample asks for
(one class, ``all`` = sample k gets class k mod N, or ``any`` = unconditional) and the
classifier-free guidance scale w (``eps = eps_u + w (eps_c - eps_u)``; 0 unconditional, 1
conditional). *Measure* runs :func:`diffusion_gui.sessions.guidance.guidance_sweep` in the
background and plots, against w, the share of samples the digits judge puts in the requested
class and the diversity within a class (relative to real held-out digits): fidelity rises,
diversity falls. Disabled, with the reason, for an unconditional model.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ...plots import make_plot, pen
from ...workers import JobSlot

__all__ = ["GuidanceBox"]

SCALES = (0.0, 1.0, 2.0, 4.0, 8.0)
UNCONDITIONAL = ("<i>This model is unconditional: it has no classes to ask for. "
                 "The built-in <b>digits-cond</b> model has.</i>")


class GuidanceBox(QGroupBox):
    """``class_choice()`` (``"any"``, ``"all"`` or a class index as a string) and ``guidance()``
    for :class:`~diffusion_gui.sessions.reverse.ReverseSettings`; ``set_model(model)`` on every
    model change; ``shutdown()`` joins the measuring job."""

    def __init__(self, ctx, parent=None):
        super().__init__("Class and guidance", parent)
        self.ctx = ctx
        self.model = None
        self.jobs = JobSlot(memory_hint="measure with fewer samples")
        self.rows: list = []
        self._wanted = "rows"           # the stored choice, kept while a model lacks it
        self.class_combo = QComboBox()
        self.class_combo.activated.connect(lambda _: setattr(self, "_wanted", self.class_combo.currentData()))
        self.class_combo.setToolTip("What each sample asks for: one class, every class in turn "
                                    "(sample k gets class k mod N), or no class (unconditional)")
        self.w_spin = QDoubleSpinBox()
        self.w_spin.setRange(0.0, 20.0)
        self.w_spin.setSingleStep(0.5)
        self.w_spin.setDecimals(1)
        self.w_spin.setValue(2.0)
        self.w_spin.setToolTip("Classifier-free guidance scale w: ε = ε_u + w (ε_c − ε_u); "
                               "0 unconditional, 1 conditional, more: further towards the class")
        self.measure_btn = QPushButton("Measure w = 0 … 8")
        self.measure_btn.setToolTip("Sample 10 of each class at w = 0, 1, 2, 4, 8 (DDIM 25 steps, "
                                    "the same noise) and judge them with the digits classifier")
        self.measure_btn.clicked.connect(self.measure)
        self.note = QLabel(UNCONDITIONAL)
        self.note.setWordWrap(True)
        self.plot = make_plot("What guidance does", "guidance scale w", "", min_height=150)
        self.plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.acc_curve = self.plot.plot([], [], pen=pen("blue"), symbol="o", symbolSize=6,
                                        symbolBrush="#0072B2", name="in the requested class")
        self.div_curve = self.plot.plot([], [], pen=pen("orange"), symbol="s", symbolSize=6,
                                        symbolBrush="#E69F00", name="diversity / real digits'")
        self.plot.setYRange(0, 1.05, padding=0)
        self.plot.setXRange(-0.3, 8.3, padding=0)
        self.plot.hide()
        form = QFormLayout()
        form.addRow("Class", self.class_combo)
        form.addRow("Guidance w", self.w_spin)
        row = QHBoxLayout()
        row.addWidget(self.measure_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(row)
        lay.addWidget(self.note)
        lay.addWidget(self.plot)
        self.set_model(None)

    # ---------------------------------------------------------------- state
    def set_model(self, model):
        """Fill the class list for ``model`` (keeping the choice where it still exists)."""
        if model is self.model and model is not None:
            return
        self.jobs.retire()
        self.model = model
        info = getattr(model, "classes", None)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if info is not None:
            if info.can_guide:
                self.class_combo.addItem("any (unconditional)", "any")
            self.class_combo.addItem("one class a row", "rows")
            self.class_combo.addItem(f"all in turn ({', '.join(info.names[:3])}, …)", "all")
            for k, name in enumerate(info.names):
                self.class_combo.addItem(name, str(k))
            self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(self._wanted)))
        self.class_combo.blockSignals(False)
        conditional = info is not None
        self.class_combo.setEnabled(conditional)
        self.w_spin.setEnabled(conditional and info.can_guide)
        self.measure_btn.setEnabled(conditional and info.can_guide and model.in_channels == 1)
        self.rows = []
        self._plot_rows()
        if not conditional:
            self.note.setText(UNCONDITIONAL)
        elif not info.can_guide:
            self.note.setText("<i>No null label: this model samples conditionally only (w = 1).</i>")
        else:
            self.note.setText(f"{info.n} classes; trained with {100 * (info.label_dropout or 0):.0f} % "
                              f"of labels dropped, so one network gives ε_c and ε_u.")

    def class_choice(self) -> str:
        """The class asked for (the stored choice while the model has no such class)."""
        return self.class_combo.currentData() or self._wanted

    def set_class_choice(self, value: str):
        self._wanted = str(value)
        i = self.class_combo.findData(self._wanted)
        if i >= 0:
            self.class_combo.setCurrentIndex(i)

    def guidance(self) -> float:
        """The guidance scale w (ignored for an unconditional model: see ``sampling_params``; 1
        for a class-conditional one without a null label, which cannot be guided)."""
        info = getattr(self.model, "classes", None)
        return 1.0 if info is not None and not info.can_guide else float(self.w_spin.value())

    def conditional(self) -> bool:
        return getattr(self.model, "classes", None) is not None

    # ---------------------------------------------------------------- measuring
    def measure(self):
        """Start the guidance sweep in the background (its rows arrive one w at a time)."""
        from ....models.data import digits
        from ....models.quality import diversity
        from ....sessions.guidance import guidance_sweep
        m = self.model
        if m is None or getattr(m, "classes", None) is None:
            return
        self.rows = []
        self._plot_rows()
        self.measure_btn.setEnabled(False)
        self.note.setText("Measuring w = 0: sampling 10 of each class…")
        device, dtype = self.ctx.device_name, self.ctx.dtype_name

        def gen():
            held, labels = digits(m.sample_size, "heldout")
            ref = diversity(held, labels)
            for r in guidance_sweep(m, SCALES, per_class=10, steps=25, seed=0, device=device,
                                    dtype=dtype):
                yield r.to_json() | {"reference": ref}

        self.jobs.start(gen, on_progress=self._row, on_finished=self._done, on_failed=self._failed,
                        on_cancelled=self._done, max_rate=0)

    def _row(self, row: dict):
        self.rows.append(row)
        self._plot_rows()
        nxt = SCALES[len(self.rows)] if len(self.rows) < len(SCALES) else None
        last = f"w = {row['guidance']:g}: {100 * row['accuracy']:.0f} % in class, diversity " \
               f"{row['diversity']:.3f} (real digits {row['reference']:.3f})."
        self.note.setText(last + (f" Now w = {nxt:g}…" if nxt is not None else ""))

    def _plot_rows(self):
        if not self.rows:
            self.acc_curve.setData([], [])
            self.div_curve.setData([], [])
            self.plot.hide()
            return
        self.plot.show()
        w = np.array([r["guidance"] for r in self.rows])
        self.acc_curve.setData(w, np.array([r["accuracy"] for r in self.rows]))
        self.div_curve.setData(w, np.array([r["diversity"] / r["reference"] for r in self.rows]))
        top = max(1.05, max(r["diversity"] / r["reference"] for r in self.rows) * 1.05)
        self.plot.setYRange(0, top, padding=0)

    def _done(self, *_):
        self.measure_btn.setEnabled(self.model is not None and getattr(self.model, "classes", None) is not None)
        if self.rows and len(self.rows) == len(SCALES):
            self.note.setText("Fidelity rises with w, diversity falls. " + self.note.text().split(" Now")[0])

    def _failed(self, message: str):
        self.measure_btn.setEnabled(True)
        self.ctx.error.emit("Guidance", message)

    def shutdown(self):
        self.jobs.shutdown()
