"""What the reverse panel shows of a run: one frame (grids, t, the step's numbers, the update
formula), the progress line and bar, the scrubber over the recorded trajectory."""
from __future__ import annotations

import math

from ....sessions.reverse import Frame, guidance_text, original_labels, run_text, update_formula, where_text
from ...format import ABAR, duration


class Display:
    """Mixed into :class:`~.panel.ReversePanel` (uses its widgets and ``_run``)."""

    def _show_original(self, on: bool):
        """The original's column (denoise runs only) takes no room when hidden."""
        self.orig_view.setVisible(on)
        self.orig_head.setVisible(on)
        self._views_grid.setColumnStretch(0, 2 if on else 0)

    def _fit_views(self):
        """No taller than the images need at the views' width: the slack goes above and below
        the whole group (header, images, trajectory), which stays together.

        The height is the one x_t needs in the three-column layout (x_t, pred x_0, spectrum), whether or not
        the original's column is shown: a denoise run's narrower pictures hang from the top of
        the same row, so that nothing moves when the mode starts or ends."""
        img = self.xt_view.image()
        extra = self.fontMetrics().height() + 10 + self.xt_head.sizeHint().height() + 2
        cols = 3                        # x_t, pred x_0 and the spectrum (stretch 3 each)
        w = max(1, (self.views_box.width() - (cols - 1) * self._views_grid.horizontalSpacing()) // cols)
        if img is None:
            h = w
        else:
            s = w / max(1, img.shape[1])
            h = math.ceil((int(s) if s >= 1 else s) * img.shape[0])   # TopView's integer zoom
        if self.views_box.maximumHeight() != max(180, h + extra):
            self.views_box.setMaximumHeight(max(180, h + extra))

    def _clear_display(self, run):
        """A new run replaces the display of the previous one."""
        self._show_original(run.kind == "denoise")
        if run.kind == "denoise":
            self.orig_view.set_image(run.original)
            title, caption = original_labels(run.model.sample_size, run.start_t)
            self.orig_head.setText(title)
            self.orig_view.set_caption(caption)
        self._fill_film([])
        self.spectrum.reset()
        self._film_next = 0
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(False)
        self.slider_label.setText("recording… (scrub after the run, a stop or a pause)")
        self.traj_note.setText("")
        self.result_label.setText("")
        self.result_label.setVisible(False)
        self._set_progress(0, 1)
        self._text_at = -1e9
        self.progress_text.set_lines(1)
        self.progress_text.setText("starting…")

    def _set_progress(self, value: int, maximum: int):
        """Set the bar without painting it at once: ``QProgressBar.setValue`` repaints
        synchronously whenever the bar moves by a pixel, a second paint of the window per frame;
        with updates off it only schedules one, painted with the rest of the frame."""
        bar = self.progress
        bar.setUpdatesEnabled(False)
        bar.setRange(0, maximum)
        bar.setValue(value)
        bar.setUpdatesEnabled(True)

    def _show_progress(self, f: Frame, n: int, rate: float, eta_s):
        """The bar and the run box's line for the live frame ``f`` of an ``n``-step run."""
        self._set_progress(min(f.step + 1, n), n)   # network steps done (steps_done)
        if f.step >= n:
            self.progress_text.setText(run_text("done", f.t, f.step, n))
        elif rate > 0:
            self.progress_text.setText(f"{run_text('running', f.t, f.step, n)}  ·  "
                                       f"{rate:.1f} steps/s  ·  ETA {duration(eta_s, 1)}")
        else:
            self.progress_text.setText(run_text("running", f.t, f.step, n))

    def _enable_scrub(self, run) -> list[Frame]:
        frames = run.traj.snapshot()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(frames) - 1))
        self.slider.setValue(max(0, len(frames) - 1))
        self.slider.blockSignals(False)
        self.slider.setEnabled(len(frames) > 1)
        self.traj_note.setText(run.traj.describe())
        self._fill_film(frames)
        if frames:
            self._show_recorded(len(frames) - 1)
        return frames

    def _show(self, f: Frame, xt, x0, text: bool = True):
        """Display one frame: the grids; with ``text``, also t and the step's numbers (captions,
        β, σ, ᾱ) and the update formula."""
        old = self.xt_view.image()
        self.xt_view.set_image(xt)
        if old is None or old.shape[:2] != xt.shape[:2]:
            self._fit_views()
        self.x0_view.set_image(x0)
        if not text:
            return
        self.spectrum.show_frame(f)
        run = self._run
        T = run.T if run is not None else 0
        self.t_label.setText(f"t = {f.t}" + (f" / {T}" if T else ""))
        m_t, s_t, m_0, s_0 = f.stats
        self.xt_view.set_caption(f"mean {m_t:+.3f}   std {s_t:.3f}")
        self.x0_view.set_caption(f"mean {m_0:+.3f}   std {s_0:.3f}")
        if f.t > 0:
            sp = "&nbsp;" * 4
            self.numbers.setText(f"β<sub>t</sub> = {f.beta:.5f}{sp}σ<sub>t</sub> = {f.sigma:.4f}{sp}"
                                 f"{ABAR}<sub>t</sub> = {f.alpha_bar:.4f}")
        else:
            self.numbers.setText("x<sub>0</sub>: the final sample")
        kind = run.params.sampler if run is not None else "ddpm"
        guided = guidance_text(run.params, getattr(run.model, "classes", None)) if run is not None else ""
        self.formula.setText(update_formula(f, kind, run.alpha_bars if run is not None else None, guided))

    def _show_recorded(self, k: int):
        run = self._run
        if run is None:
            return
        frames = run.traj.snapshot()
        if not 0 <= k < len(frames):
            return
        f = frames[k]
        self._show(f, *f.grids())
        self.slider_label.setText(where_text(f.t, f.step, run.traj.n_total - 1))
        self._mark_film(k)
