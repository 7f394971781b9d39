"""What the Forward panel offers the Export dialog (see :mod:`diffusion_gui.gui.export_sources`)."""
from __future__ import annotations


def export_sources(panel) -> list:
    """x_t now, the filmstrip, the timeline t = 0..T (computed in the export worker from copies
    of x_0, eps and the schedule taken here), the step-by-step chain once it is complete, and
    the plots. Frames are bit-identical to what the panel shows. Cheap: called in the GUI thread."""
    from ....export.timeline import forward_caption
    from ...export_sources import ForwardTimelineSource, FramesSource, PlotSource, TimelineSource
    out = []
    m = panel._math
    if m is not None:
        t = panel.t
        abar = m.a64 ** 2
        out.append(FramesSource("Forward: x_t at the current t", [m.frame(t)],
                                [forward_caption(t, float(abar[t]))]))
        fts = list(panel.filmstrip.ts)
        if fts:
            out.append(FramesSource(f"Forward: filmstrip ({len(fts)} frames)",
                                    [m.frame(ft) for ft in fts],
                                    [forward_caption(ft, float(abar[ft])) for ft in fts]))
        out.append(ForwardTimelineSource(
            f"Forward: timeline t = 0..T ({panel.schedule_name}, T = {panel.T})",
            m.x0, m.eps, panel.schedule().alpha_bars.numpy(), n_frames=60,
            name=f"forward-{panel.schedule_name}-seed{m.seed}"))
        c = panel._chain
        if c is not None and c.is_complete():
            frames, slot = c.frames, c.slot         # complete: never written again

            def chain_frame(tt, frames=frames, slot=slot):
                return frames[slot(tt)]

            def chain_caption(tt, abar=abar, ts=tuple(c.ts), slot=slot):
                shown = ts[slot(tt)]       # the kept step at or below tt
                return forward_caption(shown, float(abar[shown])) + "   (step by step)"

            out.append(TimelineSource("Forward: step-by-step chain t = 0..T", c.T,
                                      chain_frame, chain_caption, n_frames=60,
                                      name=f"forward-chain-seed{m.seed}"))
    out += [PlotSource("Forward: beta_t plot", panel.plots["beta"], name="forward-beta"),
            PlotSource("Forward: abar_t plot", panel.plots["abar"], name="forward-abar"),
            PlotSource("Forward: SNR plot", panel.plots["snr"], name="forward-snr"),
            PlotSource("Forward: pixel histogram of x_t", panel.hist_plot,
                       name="forward-histogram")]
    return out
