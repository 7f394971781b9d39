"""What the 2-D lab offers the Export dialog: the forward and reverse particle animations as
timelines (frames drawn in the export worker by :func:`diffusion_gui.export.particles.particle_frame`
from copies taken here) and its plots."""
from __future__ import annotations

from .canvas import EXTENT


def export_sources(panel) -> list:
    """Cheap (GUI thread): only copies of the arrays are taken; the frames are drawn later."""
    from ....export.particles import particle_frame
    from ....sessions.export_sources import TimelineSource
    from ...plot_source import PlotSource
    out = []
    s = panel.session
    if s is not None:
        data = s.data.copy()
        cloud = s.forward_cloud(seed=0)
        fpaths = panel.display.fpaths.copy() if panel.display.fpaths is not None else None
        abar = cloud.abar.copy()
        T = cloud.T

        def forward_frame(t, cloud=cloud, data=data, fpaths=fpaths):
            paths = None if fpaths is None else [fpaths[: t + 1, j] for j in range(fpaths.shape[1])]
            return particle_frame(cloud.at(t), extent=EXTENT, data=data, paths=paths)

        out.append(TimelineSource(f"2-D lab: forward particles t = 0..T ({s.settings.schedule})", T,
                                  forward_frame, lambda t, abar=abar: f"t = {t}   abar_t = {abar[t]:.4f}",
                                  order="forward", name=f"lab2d-forward-{s.settings.data}"))
        run = panel.run
        if run is not None and run.count:
            traces = [(k, p.copy()) for k, p in panel._traces]
            for key in ("ddpm", "ddim"):
                snap = getattr(run, key).snapshot()
                paths = [p for k, p in traces if k == key]

                def reverse_frame(t, snap=snap, paths=paths):
                    return particle_frame(snap.xs[snap.row_of(t)], extent=EXTENT, data=data,
                                          paths=paths or None)

                def caption(t, snap=snap, key=key):
                    return f"{key.upper()}   t = {int(snap.ts[snap.row_of(t)])}"

                out.append(TimelineSource(f"2-D lab: reverse {key.upper()} particles ({run.kind}, "
                                          f"{run.steps} steps)", T, reverse_frame, caption,
                                          order="reverse", n_frames=min(60, len(snap.ts)),
                                          name=f"lab2d-{key}-{run.kind}"))
    for label, w, name in (("forward view", panel.forward_view, "forward-view"),
                           ("DDPM view", panel.ddpm_view, "ddpm-view"),
                           ("DDIM view", panel.ddim_view, "ddim-view")):
        out.append(PlotSource(f"2-D lab: {label}", w, formats=("png",), name=f"lab2d-{name}"))
    for label, w, name in (("training loss", panel.loss_plot, "loss"),
                           ("loss per t against the floor", panel.profile_plot, "loss-per-t"),
                           ("nearest training point histogram", panel.hist_plot, "nearest")):
        out.append(PlotSource(f"2-D lab: {label} plot", w, name=f"lab2d-{name}"))
    return out
