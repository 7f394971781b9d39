"""The reverse panel's trajectory strip: one sample's x_t at evenly spaced steps of the run
(which recorded frames: :func:`~diffusion_gui.sessions.reverse.film_slots`)."""
from __future__ import annotations

from ....export.frames import grid_index
from ....sessions.reverse import Frame, film_slots, nearest_slot


class FilmStrip:
    """Mixed into :class:`~.panel.ReversePanel` (uses ``film``, ``film_head``, ``slider``,
    ``xt_view`` and ``_run``)."""

    def _clear_film(self):
        for fr in self.film:
            fr.key = -1
            fr.shown = None
            fr.set_image(None)
            fr.set_caption("")

    def _fill_film(self, frames: list[Frame], live: bool = False):
        """The strip: sample ``_film_sample``'s x_t at evenly spaced steps of the run (the
        recorded frame at or just before each). ``live``: during a run, only the steps already
        passed are filled in."""
        self._film_next = None
        run = self._run
        if not frames or run is None:
            self._clear_film()
            return
        b = min(self._film_sample, frames[0].xt.shape[0] - 1)
        keys, self._film_next = film_slots([f.step for f in frames], run.traj.n_total,
                                           len(self.film), live)
        for fr, k in zip(self.film, keys):
            fr.key = k
            if k < 0:
                if fr.shown is not None:
                    fr.shown = None
                    fr.set_image(None)
                    fr.set_caption("")
            elif fr.shown != (frames[k], b):   # a live strip gains one frame at a time: repaint only it
                fr.shown = (frames[k], b)
                fr.set_image(frames[k].xt[b])
                fr.set_caption(f"t = {frames[k].t}")
        self._mark_film(self.slider.value() if not live else -1)
        self.film_head.setText(f"<b>Trajectory of sample {b + 1}</b> &nbsp;<span style='color:#555'>"
                               f"x<sub>t</sub> at evenly spaced steps; click a frame to jump "
                               f"there, click a sample in the x<sub>t</sub> grid to follow it</span>")

    def _mark_film(self, k: int):
        """Outline the strip's frame nearest (by t) to recorded frame ``k`` (-1: none)."""
        run = self._run
        ts = [f.t for f in run.traj.snapshot()] if run is not None and k >= 0 else []
        near = nearest_slot([fr.key for fr in self.film], ts, k)
        for fr in self.film:
            fr.set_current(fr.key == near and near >= 0)

    def _film_clicked(self, k: int):
        if k >= 0 and self.slider.isEnabled():
            self.slider.setValue(k)

    def _pick_sample(self, pos):
        """A click on the x_t grid chooses the sample the filmstrip follows."""
        run = self._run
        img = self.xt_view.image()
        frames = run.traj.snapshot() if run is not None else []
        if img is None or not frames:
            return
        b, h, w = frames[0].xt.shape[:3]
        r = self.xt_view.image_rect()
        if not r.contains(pos):
            return
        x = (pos.x() - r.left()) / r.width() * img.shape[1]
        y = (pos.y() - r.top()) / r.height() * img.shape[0]
        k = grid_index(b, h, w, x, y)
        if k is not None:
            self._film_sample = k
            if self.slider.isEnabled():
                self._fill_film(frames)
