"""The Compare panel's forks page: from steps t of one run, K new runs with other seeds; their
spread (mean pixel std across the forks) and, for digits, how often the digit changes, as
curves over the paper's t (T noise ... 0 clean). Late forks agree, early ones do not."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QSpinBox,
    QVBoxLayout,
)

from ....errors import user_message
from ....sessions.compare import Tick
from ....sessions.forks import MAX_FORKS, ForkCurve, fork_curve_steps
from ....sessions.reverse import ReverseSettings
from ... import plots
from .common import Page, RunRow, Strip, rich

SAMPLERS = (("DDPM, all T steps", "ddpm"), ("DDPM, N steps (respaced)", "ddpm_strided"),
            ("DDIM, N steps", "ddim"))


class ForksPage(Page):
    """``sampler``, ``steps``, ``eta``, ``seed``, ``image``, ``k``, ``points``: the controls;
    ``plot`` (spread), ``changed_plot`` (share of changed digits), ``original`` and ``forks``
    (the K results of the picked fork point); ``curve``: the session's :class:`ForkCurve`."""

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.curve: ForkCurve | None = None
        self.picked: int | None = None
        self.sampler = QComboBox()
        for text, key in SAMPLERS:
            self.sampler.addItem(text, key)
        self.steps = QSpinBox(minimum=1, maximum=1000, value=100)
        self.eta = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.1, value=1.0)
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0)
        self.image = QSpinBox(minimum=0, maximum=63, value=0)
        self.k = QSpinBox(minimum=2, maximum=MAX_FORKS, value=8)
        self.points = QSpinBox(minimum=2, maximum=40, value=10)
        self.run = RunRow("Fork the run")
        self.run.button.clicked.connect(lambda: self.stop() if self.busy() else self.start_forks())
        box = QGroupBox("When does a sample commit?")
        form = QFormLayout(box)
        form.addRow("sampler", self.sampler)
        form.addRow("steps N", self.steps)
        form.addRow("η (DDIM)", self.eta)
        form.addRow("seed of the run", self.seed)
        form.addRow("sample of the batch", self.image)
        form.addRow("forks K", self.k)
        form.addRow("fork points", self.points)
        form.addRow(self.run)
        form.addRow(rich("The run is replayed (same seed, batch of one sample past <i>sample</i>) "
                         "and, at each fork point t, continued K times with fresh noise. DDIM with "
                         "η = 0 is deterministic: its forks never spread.", wrap=True, grey=True))
        box.setMaximumWidth(360)
        self.plot = plots.make_plot("", "fork point t", "spread across forks", min_height=170)
        self.spread_curve = self.plot.plot([], [], pen=plots.pen("blue", 2.5), symbol="o",
                                           symbolSize=8, symbolBrush=plots.COLORS["blue"])
        self.cursor = plots.add_t_cursor(self.plot, 1000, self.pick_t)
        self.changed_plot = plots.make_plot("", "fork point t", "digit changed", min_height=130)
        self.changed_plot.setYRange(0, 1, padding=0.05)
        self.changed_curve = self.changed_plot.plot([], [], pen=plots.pen("red", 2.5), symbol="s",
                                                    symbolSize=8, symbolBrush=plots.COLORS["red"])
        self.changed_plot.setXLink(self.plot)
        self.original = Strip("<b>the original run's result</b>", min_height=90)
        self.forks = Strip("<b>forks</b>", min_height=90)
        results = QHBoxLayout()
        results.addWidget(self.original, 1)
        results.addWidget(self.forks, 6)
        right = QVBoxLayout()
        right.addWidget(rich("<b>Spread of the K forks</b> &nbsp;<span style='color:#555'>mean over "
                             "pixels of their std; click a point to see its forks</span>"))
        right.addWidget(self.plot, 3)
        self.changed_head = rich("<b>Share of forks whose digit differs from the original's</b> "
                                 "&nbsp;<span style='color:#555'>the digits judge</span>")
        right.addWidget(self.changed_head)
        right.addWidget(self.changed_plot, 2)
        right.addLayout(results, 2)
        left = QVBoxLayout()
        left.addWidget(box)
        left.addStretch(1)
        lay = QHBoxLayout(self)
        lay.addLayout(left)
        lay.addLayout(right, 1)

    def settings_params(self):
        return ReverseSettings(sampler=self.sampler.currentData(), steps=self.steps.value(),
                               eta=self.eta.value(), seed=self.seed.value(),
                               batch=self.image.value() + 1).sampling_params(**self.placement())

    def start_forks(self) -> bool:
        model = self.model()
        if model is None:
            return False
        params = self.settings_params()
        k, n, image = self.k.value(), self.points.value(), self.image.value()
        try:
            params.check(model.num_timesteps)
        except Exception as e:  # noqa: BLE001
            msg = user_message(e)
            if msg is None:
                raise
            self.run.status.setText(f"<span style='color:#b00'>{msg}</span>")
            return False
        self.curve, self.picked = None, None
        T = int(model.num_timesteps)
        self.plot.setXRange(0, T, padding=0.02)
        self.cursor.set_range(1, T)
        self.spread_curve.setData([], [])
        self.changed_curve.setData([], [])
        self.run.status.setText("replaying the run…")
        box = {}

        def gen():
            return fork_curve_steps(model, params, image=image, k=k, n_points=n)

        def observe(item):
            if isinstance(item, ForkCurve):
                box["curve"] = item

        def progress(item):
            if isinstance(item, Tick):
                self.run.tick(Tick(item.stage + 1, item.done, item.total), n + 1)
                if item.stage >= 0:
                    self.run.status.setText(f"fork point {item.stage + 1} of {n}")
            if "curve" in box:
                self._show_curve(box["curve"])

        self.start(self.run, gen, on_progress=progress, observe=observe,
                   on_done=lambda _: self._done(box.get("curve")))
        return True

    def _done(self, curve):
        if curve is None:
            return
        self._show_curve(curve)
        self.run.status.setText(f"{len(curve.points)} fork points × {curve.k} forks in "
                                f"{curve.seconds:.1f} s")

    def _show_curve(self, curve: ForkCurve):
        self.curve = curve
        pts = list(curve.points)
        if not pts:
            return
        t, spread = curve.curve()
        self.spread_curve.setData(t, spread)
        judged = pts[0].changed is not None
        self.changed_plot.setVisible(judged)
        self.changed_head.setVisible(judged)
        if judged:
            by_t = sorted(pts, key=lambda p: p.t)
            self.changed_curve.setData([p.t for p in by_t], [p.changed for p in by_t])
        cls = "" if curve.original_class is None else f" &nbsp;digit {curve.original_class}"
        self.original.set_images(curve.original[None], f"<b>original</b>{cls}")
        self.pick_t(self.picked if self.picked is not None else pts[0].t)

    def pick_t(self, t: int):
        c = self.curve
        if c is None or not c.points:
            return
        p = min(c.points, key=lambda q: abs(q.t - t))
        self.picked = p.t
        self.cursor.set_t(p.t)
        extra = "" if p.changed is None else f" · digits {', '.join(map(str, p.classes))}"
        self.forks.set_images(p.images, f"<b>{c.k} forks from t = {p.t}</b> &nbsp;<span style='color:#555'>"
                                        f"spread {p.spread:.3f}{extra}</span>")

    def export_sources(self) -> list:
        from ....sessions.export_sources import FramesSource
        from ...plot_source import PlotSource
        c = self.curve
        if c is None or not c.points:
            return []
        p = min(c.points, key=lambda q: abs(q.t - (self.picked or 0)))
        gap = np.full((c.original.shape[0], 4, c.original.shape[2]), 255, np.uint8)
        row = np.concatenate([c.original, gap] + [a for img in p.images for a in (img, gap[:, :1])], axis=1)
        return [PlotSource("Compare: fork spread over t (plot)", self.plot),
                FramesSource(f"Compare: the original and its forks from t = {p.t}", [row])]
