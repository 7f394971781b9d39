"""The 2-D lab's background work, one :class:`~diffusion_gui.gui.workers.JobSlot` per kind:
the session's creation (it imports torch), training the MLP, the reverse run, a traced particle,
the density and field overlay, the comparison of the denoisers. Functions of the panel; every job
takes or returns numpy only (no tensor crosses a signal)."""
from __future__ import annotations

import time

import numpy as np

TRAIN_RATE = 8.0           # training reports shown per second, at most
MAX_TRACES = 12            # traced particles kept
PACE_S = 0.001             # the reverse run's pause after each step (see sample())


def load_session(panel, settings):
    def make():
        from ....sessions.lab2d import Lab2DSession
        return Lab2DSession(settings)
    panel._load.start(make, background=True, on_done=panel._session_ready,
                      on_failed=lambda msg: panel.ctx.error.emit("2-D lab", msg), abandonable=True)


# ---------------------------------------------------------------- training
def train(panel):
    s = panel.session
    if s is None or panel._train.is_running():
        return

    def convert(m):
        return m.step, m.loss, np.array(m.bucket_loss), m.steps_per_s

    def paused():
        panel._train_paused = True
        panel._update_buttons()

    panel._train_paused = False
    panel._train.start(lambda: s.train(), convert, on_progress=panel._trained,
                       on_failed=lambda msg: _failed(panel, "Training failed", msg),
                       on_paused=paused, max_rate=TRAIN_RATE)
    panel._update_buttons()


def pause_or_resume(panel):
    w = panel._train.worker
    if w is None or not panel._train.is_running():
        return
    if w.is_paused:
        panel._train_paused = False
        w.resume()
    else:
        w.pause()
    panel._update_buttons()


def stop_training(panel) -> bool:
    """Stop and join the training job; True if it was running (to restart it after a reset)."""
    was = panel._train.is_running() and not panel._train.worker.is_paused
    panel._train.shutdown(timeout_ms=None)
    return was


# ---------------------------------------------------------------- sampling
def sample(panel):
    s = panel.session
    if s is None:
        return
    panel.sync_settings()
    st = s.settings
    try:
        run, items = s.reverse_run(st.model, n=st.particles, steps=min(st.steps, s.timesteps),
                                   seed=panel.rseed_spin.value(), grid=st.show_grid)
    except Exception as e:  # noqa: BLE001 - a UserError (exact on a shape) is shown, not raised
        from ....errors import user_message
        panel.ctx.error.emit("Cannot sample", user_message(e) or str(e))
        return
    panel.run = run
    panel._traces = []
    panel._live = True
    def paced():
        # a short sleep after each step hands the GIL to the GUI thread, which would otherwise
        # wait for it at every Python call of a frame while the sampler's Python runs
        for k in items:
            yield k
            time.sleep(PACE_S)

    panel._sample.start(paced, lambda k: k, on_progress=panel._sampling,
                        on_finished=lambda _: panel._sampled(), on_cancelled=panel._sampled,
                        on_failed=lambda msg: _failed(panel, "Sampling failed", msg), max_rate=5)
    panel.frame_timer.start()
    panel._update_buttons()


def launch(panel, key: str, xy):
    """A traced particle from ``xy`` at the current t in view ``key`` (its sampler)."""
    s = panel.session
    if s is None:
        return
    t = panel.t
    st = s.settings
    steps = panel.run.steps if panel.run is not None else min(st.steps, s.timesteps)
    kind = panel.run.kind if panel.run is not None else st.model
    if kind == "exact" and not s.has_exact:
        kind = "mlp"

    def done(path):
        panel._traces = (panel._traces + [(key, np.asarray(path, np.float32))])[-MAX_TRACES:]
        panel.show_t()
        panel.particle_launched.emit(key, len(path))

    panel._trace.start(lambda: s.trace(xy, t, kind, key, steps=steps), background=True,
                       on_done=done, on_failed=lambda msg: _failed(panel, "Cannot trace", msg))


# ---------------------------------------------------------------- overlay and numbers
def overlay(panel):
    """Density and fields at the current t (latest wins; a newer request waits for this one)."""
    s = panel.session
    if s is None:
        return
    if panel._overlay_job.is_running():
        panel._overlay_dirty = True
        return
    panel._overlay_dirty = False
    from .canvas import density_grid
    xs, ys = density_grid()
    t, kind, what = panel.t, s.settings.model, s.settings.field
    if kind == "exact" and not s.has_exact:
        kind = "mlp"
    # the density depends on t, the data and the schedule only: reuse it while training
    key = (t, panel.display.version, s.settings.schedule, s.timesteps)
    cached = panel._overlay.log_q if panel._overlay is not None and panel._overlay_key == key else None

    cached_lines = panel._contours if cached is not None else None

    def make():
        from ....core.toy2d_mlp import one_thread
        from ....sessions.lab2d_field import overlay as compute
        from .canvas import contour_lines
        with one_thread():
            ov = compute(s, t, xs, ys, kind, what, log_q=cached)
        return ov, contour_lines(ov.log_q) if cached_lines is None else cached_lines

    def done(result):
        from shiboken6 import isValid
        if not isValid(panel) or not isValid(panel.forward_view.density):
            return                           # the panel went away while the overlay was computed
        ov, panel._contours = result
        panel._overlay, panel._overlay_key = ov, key
        panel.show_overlay()
        if panel._overlay_dirty:
            panel.overlay_timer.start()

    panel._overlay_job.start(make, background=True, on_done=done,
                             on_failed=lambda msg: _failed(panel, "2-D lab", msg))


def compare(panel):
    s = panel.session
    if s is None or panel._compare.is_running():
        return
    panel.sync_settings()
    ts = np.unique(np.linspace(1, s.timesteps, 40).round().astype(int))

    def gen():
        from ....core.toy2d_mlp import one_thread
        from ....sessions.lab2d_numbers import compare_denoisers, fresh_nearest
        out = {}            # cumulative: the latest emission has everything so far
        with one_thread():
            out["fresh"] = fresh_nearest(s)
            yield dict(out)
            for c in compare_denoisers(s):
                out[c.kind] = c.quality
                yield dict(out)
            mse, floor = s.loss_profile(ts, "mlp", n=1000)
            out["profile"] = (ts, np.asarray(mse), None if floor is None else np.asarray(floor))
            yield dict(out)
            from ....sessions.lab2d_numbers import heldout_bound
            bound = {}      # a new dict per emission: one already sent is never mutated
            for kind in ("mlp", "exact") if s.has_exact else ("mlp",):
                bound = {**bound, kind: heldout_bound(s, kind)}
                out["bound"] = bound
                yield dict(out)

    panel._compare.start(gen, on_progress=panel._compared, max_rate=0,
                         on_finished=lambda _: panel._update_buttons(),
                         on_failed=lambda msg: _failed(panel, "Comparison failed", msg))
    panel._update_buttons()
    panel.ctx.status.emit("2-D lab: comparing the denoisers…")


def _failed(panel, title, msg):
    panel.ctx.error.emit(title, msg)
    panel._update_buttons()
