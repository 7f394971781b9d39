"""What the 2-D lab's three views show at the current t (the panel's state drawn, nothing computed
that takes long: the density and the fields arrive from a worker, :func:`.runs.overlay`)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from .canvas import FORWARD_PATH_COLOR

PATH_VERTICES = 250        # at most this many vertices of a forward path are drawn
FORWARD_PATHS = 3          # particles whose forward chains are traced


def _num(v: float) -> str:
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


class Display:
    """Draws the panel's data, runs and overlay into its views."""

    def __init__(self, panel):
        self.p = panel
        self.cloud = None            # ForwardCloud snapshot of the data
        self.fpaths = None           # [T + 1, K, 2] forward chains
        self.version = 0             # of the data (the overlay's density cache key)
        c = pg.mkColor(FORWARD_PATH_COLOR)
        c.setAlpha(200)
        panel.forward_view.paths.setPen(pg.mkPen(c, width=1.2))
        panel.forward_view.path_heads.setBrush(pg.mkBrush(FORWARD_PATH_COLOR))

    def data_changed(self, light: bool):
        p, s = self.p, self.p.session
        self.version += 1
        self.cloud = s.forward_cloud(seed=0)
        self.fpaths = s.forward_paths(FORWARD_PATHS, seed=0)     # a few ms for T = 1000
        for v in p.views.values():
            v.data_points.set_points(s.data)
        p.forward_view.set_handles(s.mixture.means if s.settings.data == "gmm" else None)
        p.forward_view.set_hint("paint points here" if p.data_key() == "draw" and s.settings.data != "custom"
                                else "")
        self.show_t()

    def layout_views(self):
        view = self.p.session.settings.view if self.p.session is not None else "both"
        for key in ("ddpm", "ddim"):
            on = view in ("both", key)
            self.p.views[key].setVisible(on)
            self.p.captions[key].setVisible(on)

    def show_t(self):
        p, s = self.p, self.p.session
        if s is None:
            return
        t = p.t
        T = s.timesteps
        a = s.abar(t)
        p.t_label.setText(f"t = {t} / {T}")
        if self.cloud is not None and self.cloud.T == T:
            p.forward_view.particles.set_points(self.cloud.at(t))
        if self.fpaths is not None and self.fpaths.shape[0] == T + 1:
            stride = max(1, t // PATH_VERTICES)        # a light polyline, ending exactly at t
            p.forward_view.set_paths([np.concatenate([self.fpaths[:t:stride, j], self.fpaths[t:t + 1, j]])
                                      for j in range(self.fpaths.shape[1])])
        p.captions["forward"].setText(
            f"<b>t = {t}</b> &nbsp; ᾱ<sub>t</sub> = {_num(a)} &nbsp; √ᾱ<sub>t</sub> = {_num(np.sqrt(a))}"
            f" &nbsp; √(1−ᾱ<sub>t</sub>) = {_num(np.sqrt(1 - a))}<br>x<sub>t</sub> = √ᾱ<sub>t</sub> x<sub>0</sub>"
            f" + √(1−ᾱ<sub>t</sub>) ε, &nbsp;{len(s.data):,} points")
        run = p.run
        for key in ("ddpm", "ddim"):
            view = p.views[key]
            traj = None if run is None else getattr(run, key)
            if traj is None or traj.count == 0:
                view.particles.set_points(np.zeros((0, 2)))
                view.set_grid(None)
                view.set_paths([path for k, path in p._traces if k == key])
                view.set_hint("Sample to see the particles come back;\nclick to launch one at the current t"
                              if run is None else "")
                p.captions[key].setText(self._reverse_caption(key, None, None))
                continue
            k = traj.row_of(t)
            view.particles.set_points(traj.xs[k])
            view.set_hint("")
            grid = run.grid if key == "ddim" and s.settings.show_grid else None
            if grid is not None and grid.count > k:
                from ....sessions.lab2d_paths import GRID_POINTS_PER_LINE
                view.set_grid(grid.xs[k].reshape(-1, GRID_POINTS_PER_LINE, 2))
            else:
                view.set_grid(None)
            view.set_paths([path for kk, path in p._traces if kk == key])
            p.captions[key].setText(self._reverse_caption(key, run, int(traj.ts[k])))

    def _reverse_caption(self, key, run, t_row) -> str:
        p = self.p
        ov = p._overlay
        err = ""
        if ov is not None and ov.error is not None and ov.t == p.t:
            err = f" &nbsp; field error vs exact: {_num(ov.error[0])} ({100 * ov.error[1]:.1f} %)"
        if run is None:
            return f"denoiser: {p.session.settings.model}{err}"
        live = "" if run.complete else f" &nbsp; (step {run.count - 1} of {len(run.ts) - 1})"
        return (f"<b>t = {t_row}</b> &nbsp; {run.ddpm.n:,} particles, {run.steps} steps, "
                f"{run.kind}{live}<br>{sum(1 for k, _ in p._traces if k == key)} traced{err}")

    def show_overlay(self):
        p, ov, s = self.p, self.p._overlay, self.p.session
        if ov is None or s is None:
            return
        from ....sessions.lab2d_field import arrow_segments
        p.forward_view.set_density(ov.log_q, p._contours)
        p.forward_view.setTitle(f"Forward: x_t over q_t ({'exact' if ov.reference_name == 'exact' else 'KDE'})")
        show = s.settings.show_field and ov.reference is not None
        p.forward_view.set_arrows(arrow_segments(ov.reference.points, ov.reference.vectors, ov.scale)
                                  if show else None)
        for key in ("ddpm", "ddim"):
            p.views[key].set_arrows(arrow_segments(ov.learned.points, ov.learned.vectors, ov.scale)
                                    if show and ov.learned is not None else None)
        self.show_t()
