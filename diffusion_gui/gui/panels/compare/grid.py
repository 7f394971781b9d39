"""The Compare panel's grid page: rows = samplers from one x_T, columns = samples; one slider
scrubs every row to the same t (the paper's t: T noise ... 0 clean)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....errors import user_message
from ....sessions.compare import MAX_COLUMNS, CompareGrid, RowResult, Tick, grid_frames, grid_image, parse_rows
from .common import Page, RunRow, Strip, rich


class GridPage(Page):
    """``rows_edit``, ``batch``, ``seed``, ``run``: the controls; ``slider`` / ``which``: the
    scrubber; ``strips``: one :class:`Strip` per finished row; ``grid``: the session."""

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.grid: CompareGrid | None = None
        self.strips: list[Strip] = []
        self.rows_edit = QLineEdit()
        self.rows_edit.setToolTip("One row per sampler: ddpm (all T steps), ddpm:N (respaced), "
                                  "ddim:N:ETA, comma-separated")
        self.batch = QSpinBox(minimum=1, maximum=MAX_COLUMNS, value=8)
        self.seed = QSpinBox(minimum=0, maximum=2 ** 31 - 1, value=0)
        self.run = RunRow("Run the grid")
        self.run.button.clicked.connect(self._run_clicked)
        box = QGroupBox("Rows from one x_T")
        form = QFormLayout(box)
        form.addRow(rich("samplers, one a row &nbsp;<span style='color:#555'>ddpm · ddpm:N · "
                         "ddim:N:η</span>"))
        form.addRow(self.rows_edit)
        form.addRow("samples (columns)", self.batch)
        form.addRow("seed", self.seed)
        form.addRow(self.run)
        form.addRow(rich("Every row starts from the seed's x<sub>T</sub> and draws its step noise "
                         "from the same stream: a row equals the Reverse panel's run of the same "
                         "sampler, steps and seed. DDIM with η = 1 over N steps is DDPM respaced "
                         "to N: those two rows agree.", wrap=True, grey=True))
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setInvertedAppearance(True)   # noise on the left, like a run
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._show_t)
        self.t_label = rich("<b>t = 0</b>")
        self.t_label.setMinimumWidth(110)
        self.which = QComboBox()
        self.which.addItem("x_t", "xt")
        self.which.addItem("predicted x₀", "x0")
        self.which.currentIndexChanged.connect(lambda _: self._show_t(self.slider.value()))
        scrub = QHBoxLayout()
        scrub.addWidget(rich("<b>Scrub all rows</b> &nbsp;T"))
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(rich("0"))
        scrub.addWidget(self.t_label)
        scrub.addWidget(self.which)
        self.rows_box = QWidget()
        self.rows_lay = QVBoxLayout(self.rows_box)
        self.rows_lay.setContentsMargins(4, 4, 4, 4)
        self.rows_lay.setSpacing(10)
        self.rows_lay.addStretch(1)
        self.placeholder = rich("<span style='color:#777; font-size:14pt'>Run the grid to see what "
                                "DDPM and DDIM make of the same noise.</span>")
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.rows_lay.insertWidget(0, self.placeholder)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.rows_box)
        right = QVBoxLayout()
        right.addLayout(scrub)
        right.addWidget(scroll, 1)
        lay = QHBoxLayout(self)
        left = QVBoxLayout()
        left.addWidget(box)
        left.addStretch(1)
        box.setMaximumWidth(360)
        lay.addLayout(left)
        lay.addLayout(right, 1)

    # ------------------------------------------------------------------ running
    def _run_clicked(self):
        if self.busy():
            self.stop()
        else:
            self.start_grid()

    def start_grid(self) -> bool:
        model = self.model()
        if model is None:
            return False
        try:
            grid = CompareGrid(parse_rows(self.rows_edit.text()), batch=self.batch.value(),
                               seed=self.seed.value(), **self.placement()).check()
            for spec in grid.rows:
                spec.params(grid.batch, grid.seed).check(model.num_timesteps)
        except Exception as e:  # noqa: BLE001 - a UserError is shown, anything else is a bug
            msg = user_message(e)
            if msg is None:
                raise
            self.run.status.setText(f"<span style='color:#b00'>{msg}</span>")
            return False
        self.grid = grid
        self._clear_rows()
        self.slider.setRange(0, int(model.num_timesteps))
        self.slider.setEnabled(False)
        n = len(grid.rows)
        self.run.status.setText(f"running {n} rows…")
        self.start(self.run, lambda: grid.run(model), on_progress=lambda item: self._progress(item, n),
                   on_done=lambda _: self._done())
        return True

    def _progress(self, item, n):
        if isinstance(item, Tick):
            self.run.tick(item, n)
            self.run.status.setText(f"row {item.stage + 1} of {n}: step {item.done + 1} / {item.total}")
        self._sync_rows()

    def _done(self):
        self._sync_rows()
        g = self.grid
        if g is not None and g.results:
            self.slider.setEnabled(True)
            self.slider.setValue(0)
            self._show_t(0)
            total = sum(r.seconds for r in g.results)
            self.run.status.setText(f"{len(g.results)} rows in {total:.1f} s")

    def _clear_rows(self):
        for s in self.strips:
            s.setParent(None)
            s.deleteLater()
        self.strips = []
        self.placeholder.setVisible(True)

    def _sync_rows(self):
        g = self.grid
        if g is None:
            return
        results = list(g.results)
        while len(self.strips) < len(results):
            r = results[len(self.strips)]
            s = Strip(min_height=60)
            self.rows_lay.insertWidget(self.rows_lay.count() - 1, s)
            self.strips.append(s)
            self.placeholder.setVisible(False)
            self._fill(s, r, self.slider.value())

    @staticmethod
    def _title(r: RowResult) -> str:
        return (f"<b>{r.label}</b> &nbsp;<span style='color:#555'>{r.readout(with_steps=False)}"
                f"</span>")

    def _fill(self, strip: Strip, r: RowResult, t: int):
        k = r.index_at(t)
        imgs = (r.xt if self.which.currentData() == "xt" else r.x0)[k]
        strip.set_images(imgs, self._title(r) + f" &nbsp;<span style='color:#888'>(at t = {r.ts[k]})</span>")

    def _show_t(self, t: int):
        self.t_label.setText(f"<b>t = {t}</b>")
        g = self.grid
        if g is None:
            return
        for s, r in zip(self.strips, g.results):
            self._fill(s, r, t)

    # ------------------------------------------------------------------ export
    def export_sources(self) -> list:
        from ....sessions.export_sources import FramesSource
        g = self.grid
        if g is None or not g.results or self.busy():
            return []
        t, which = self.slider.value(), self.which.currentData()
        still = grid_image(g, t, which)
        return [FramesSource(f"Compare: the grid at t = {t}", [still]),
                FramesSource("Compare: the grid from t = T to 0 (GIF)",
                             fn=lambda: grid_frames(g, 60, which), kind="timeline")]
