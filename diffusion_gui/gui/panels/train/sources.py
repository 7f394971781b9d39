"""What the Train panel offers the Export dialog."""
from __future__ import annotations

from ...export_sources import FramesSource, PlotSource


def export_sources(p) -> list:
    """The sample grids of panel ``p``'s run (a GIF of the model learning), the data preview,
    and the two plots (PNG / SVG / CSV)."""

    def strip():
        grids = p.strip.grids
        return [g for _, g, _ in grids], [f"step {s:,}" for s, _, _ in grids]

    def preview():
        img = p.preview.image()
        return [] if img is None else [img]

    return [FramesSource("Training samples (every grid of the run)", fn=strip,
                         name="training-samples"),
            FramesSource("Training data preview", fn=preview, name="training-data"),
            PlotSource("Training loss plot", p.loss_plot, name="training-loss"),
            PlotSource("Training loss per timestep bucket", p.bucket_plot,
                       name="training-buckets")]
