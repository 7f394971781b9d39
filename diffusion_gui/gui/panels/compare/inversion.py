"""The Compare panel's inversion page: DDIM (eta = 0) from an image to x_T and back, the
reconstruction and its error against the number of steps; and the interpolation between two
inverted images along the spherical path of their latents (a strip, exported as a GIF)."""
from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
)

from ....errors import InvalidParameter, user_message
from ....sessions.compare import Tick, is_digits_model
from ....sessions.inversion import (
    MAX_FRAMES,
    Reconstruction,
    error_vs_steps_ticks,
    fit_image,
    heldout_digits,
    interpolate,
    strip,
)
from ... import plots
from .common import Page, RunRow, Strip, rich


def parse_steps(text: str) -> list[int]:
    try:
        steps = sorted({int(s) for s in str(text).replace(" ", "").split(",") if s})
    except ValueError:
        raise InvalidParameter("steps", "must be step counts like 10, 50, 200") from None
    if not steps or steps[0] < 1:
        raise InvalidParameter("steps", "must be step counts >= 1")
    return steps


class InversionPage(Page):
    """``source`` (held-out digits / the Forward panel's image), ``n_digits``, ``steps_edit``,
    ``run``; ``plot`` (PSNR vs steps), ``originals`` / ``recon`` strips; interpolation:
    ``a_index``, ``b_index``, ``frames``, ``interp_steps``, ``interp_run``, ``interp_strip``."""

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.recons: list[Reconstruction] = []
        self.interp: dict | None = None
        self.picked = 0
        self.source = QComboBox()
        self.source.addItem("the model's held-out examples", "digits")
        self.source.addItem("the Forward panel's image", "image")
        self.n_digits = QSpinBox(minimum=1, maximum=16, value=6)
        self.steps_edit = QLineEdit("10, 20, 50, 100, 200")
        self.run = RunRow("Invert and reconstruct")
        self.run.button.clicked.connect(lambda: self.stop() if self.busy() else self.start_inversion())
        box = QGroupBox("DDIM inversion (η = 0)")
        form = QFormLayout(box)
        form.addRow("images", self.source)
        form.addRow("digits", self.n_digits)
        form.addRow("steps N", self.steps_edit)
        form.addRow(self.run)
        form.addRow(rich("x<sub>0</sub> &rarr; x<sub>T</sub> with the DDIM update run upwards, then "
                         "DDIM back down the same N steps, unclipped. The error is the ODE's "
                         "discretisation error: it falls with N.", wrap=True, grey=True))
        self.a_index = QSpinBox(minimum=0, maximum=199, value=0)
        self.b_index = QSpinBox(minimum=0, maximum=199, value=5)
        self.frames = QSpinBox(minimum=2, maximum=MAX_FRAMES, value=9)
        self.interp_steps = QSpinBox(minimum=1, maximum=1000, value=50)
        self.interp_run = RunRow("Interpolate")
        self.interp_run.button.clicked.connect(lambda: self.stop() if self.busy() else self.start_interp())
        ibox = QGroupBox("Interpolation (slerp of x_T)")
        iform = QFormLayout(ibox)
        iform.addRow("held-out digit A", self.a_index)
        iform.addRow("held-out digit B", self.b_index)
        iform.addRow("frames", self.frames)
        iform.addRow("steps", self.interp_steps)
        iform.addRow(self.interp_run)
        self.interp_note = rich("", wrap=True, grey=True)
        iform.addRow(self.interp_note)
        for b in (box, ibox):
            b.setMaximumWidth(360)
        self.plot = plots.make_plot("", "DDIM steps N (there and back)", "PSNR (dB)", min_height=180)
        pi = self.plot.getPlotItem()
        pi.setAxisItems({"bottom": plots.LogAxis("bottom")})
        plots.style_plot(pi, "", "DDIM steps N (there and back)", "PSNR (dB)")
        pi.setLogMode(x=True, y=False)
        self.psnr_curve = self.plot.plot([], [], pen=plots.pen("blue", 2.5), symbol="o", symbolSize=9,
                                         symbolBrush=plots.COLORS["blue"])
        self.pick_marker = self.plot.plot([], [], pen=None, symbol="o", symbolSize=16,
                                          symbolBrush=None, symbolPen=plots.pen("red", 2.5))
        self.plot.scene().sigMouseClicked.connect(self._plot_clicked)
        self.originals = Strip("<b>original</b>", min_height=70)
        self.recon = Strip("<b>reconstruction</b>", min_height=70)
        self.interp_strip = Strip("<b>interpolation</b> &nbsp;<span style='color:#555'>decoded "
                                  "points of the spherical path between the two latents</span>",
                                  min_height=70)
        right = QVBoxLayout()
        right.addWidget(rich("<b>Reconstruction error against the number of steps</b> &nbsp;"
                             "<span style='color:#555'>mean PSNR of the uint8 images; click a point"
                             "</span>"))
        right.addWidget(self.plot, 3)
        right.addWidget(self.originals, 2)
        right.addWidget(self.recon, 2)
        right.addWidget(self.interp_strip, 2)
        left = QVBoxLayout()
        left.addWidget(box)
        left.addWidget(ibox)
        left.addStretch(1)
        lay = QHBoxLayout(self)
        lay.addLayout(left)
        lay.addLayout(right, 1)

    # ------------------------------------------------------------------ images
    def _images(self, model, n: int) -> np.ndarray:
        """uint8 [n, S, S, C] at the model's size: held-out digits, or the Forward image."""
        if self.source.currentData() == "digits":
            if not is_digits_model(model) and model.in_channels != 1:
                raise InvalidParameter("images", "held-out digits need a 1-channel model; choose "
                                                 "the Forward panel's image")
            return heldout_digits(model, n)
        if self.ctx.image is None:
            raise InvalidParameter("images", "no image is open in the Forward panel")
        return fit_image(model, self.ctx.image)

    def _problem(self, e, row: RunRow | None = None) -> bool:
        msg = user_message(e)
        if msg is None:
            raise e
        (row or self.run).status.setText(f"<span style='color:#b00'>{msg}</span>")
        return False

    # ------------------------------------------------------------------ inversion
    def start_inversion(self) -> bool:
        model = self.model()
        if model is None:
            return False
        try:
            steps = [s for s in parse_steps(self.steps_edit.text()) if s <= model.num_timesteps]
            if not steps:
                raise InvalidParameter("steps", f"must be in 1..{model.num_timesteps}")
            images = self._images(model, self.n_digits.value())
        except Exception as e:  # noqa: BLE001
            return self._problem(e)
        self.recons = []
        got: list = []
        self.originals.set_images(images, f"<b>original</b> &nbsp;<span style='color:#555'>"
                                          f"{len(images)} image(s) at {images.shape[1]} px</span>")
        self.recon.set_images(None, "<b>reconstruction</b>")
        n = len(steps)

        def observe(item):
            if isinstance(item, Reconstruction):
                got.append(item)

        def progress(item):
            if isinstance(item, Tick):
                self.run.tick(item, n)
                self.run.status.setText(f"N = {steps[item.stage]}: step {item.done + 1} of {item.total}")
            self._show(list(got))

        where = self.placement()
        self.start(self.run, lambda: error_vs_steps_ticks(model, images, steps, **where),
                   on_progress=progress, observe=observe, on_done=lambda _: self._done(list(got)))
        return True

    def _done(self, recons):
        self._show(recons)
        if recons:
            r = recons[-1]
            self.run.status.setText(f"{len(recons)} step counts; N = {r.steps}: PSNR "
                                    f"{r.psnr.mean():.1f} dB")

    def _show(self, recons):
        if len(recons) == len(self.recons) and recons:
            return
        self.recons = recons
        if not recons:
            return
        x = [r.steps for r in recons]
        y = [float(r.psnr.mean()) for r in recons]
        self.psnr_curve.setData(x, y)
        self.pick(len(recons) - 1)

    def pick(self, k: int):
        if not self.recons:
            return
        k = max(0, min(int(k), len(self.recons) - 1))
        self.picked = k
        r = self.recons[k]
        self.pick_marker.setData([r.steps], [float(r.psnr.mean())])
        self.recon.set_images(r.recon, f"<b>reconstruction, N = {r.steps}</b> &nbsp;<span style="
                                       f"'color:#555'>PSNR {r.psnr.mean():.1f} dB · MSE "
                                       f"{r.mse.mean():.2e} · std of x<sub>T</sub> "
                                       f"{r.latent.std():.2f}</span>")

    def _plot_clicked(self, ev):
        if not self.recons:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        x = vb.mapSceneToView(ev.scenePos()).x()         # log10(N)
        self.pick(int(np.argmin([abs(np.log10(r.steps) - x) for r in self.recons])))

    # ------------------------------------------------------------------ interpolation
    def start_interp(self) -> bool:
        model = self.model()
        if model is None:
            return False
        steps, n = self.interp_steps.value(), self.frames.value()
        try:
            if steps > model.num_timesteps:
                raise InvalidParameter("steps", f"must be in 1..{model.num_timesteps}")
            if self.source.currentData() == "digits":
                a = heldout_digits(model, 1, start=self.a_index.value())
                b = heldout_digits(model, 1, start=self.b_index.value())
                what = f"held-out digits {self.a_index.value()} and {self.b_index.value()}"
            else:
                a = self._images(model, 1)
                b = a[:, :, ::-1].copy()
                what = "the Forward panel's image and its mirror image"
        except Exception as e:  # noqa: BLE001
            return self._problem(e, self.interp_run)

        where = self.placement()

        def gen():
            yield interpolate(model, a, b, steps=steps, n_frames=n, **where)

        def done(res):
            self.interp = res
            self.interp_strip.set_images(res["frames"], f"<b>interpolation</b> &nbsp;<span style="
                                         f"'color:#555'>{what}; latents {res['angle_deg']:.0f}° "
                                         f"apart; w = 0 … 1</span>")
            self.interp_run.status.setText(f"{len(res['frames'])} frames, {steps} DDIM steps each")

        self.interp_run.status.setText("inverting both images and decoding the path…")
        self.start(self.interp_run, gen, on_progress=lambda _: None, on_done=done)
        return True

    # ------------------------------------------------------------------ export
    def export_sources(self) -> list:
        from ....sessions.export_sources import FramesSource
        from ....sessions.inversion import sheet
        from ...plot_source import PlotSource
        out = []
        if self.recons:
            out += [FramesSource("Compare: originals and reconstructions", [sheet(list(self.recons))]),
                    PlotSource("Compare: reconstruction PSNR vs steps (plot)", self.plot)]
        if self.interp is not None:
            fr, ws = self.interp["frames"], self.interp["weights"]
            out += [FramesSource("Compare: interpolation strip", [strip(fr, ws)]),
                    FramesSource("Compare: interpolation (GIF)", list(fr),
                                 [f"w = {w:.2f}" for w in ws], kind="timeline")]
        return out
