"""The loss panel's words: the summary beside the plots and the read-out under them (rich text).

Timesteps are the paper's ``t`` (1..T; ``t = 0`` is the clean image x_0).
"""
from __future__ import annotations

import numpy as np

from ....sessions.losses import kl_sum
from ...format import fmt
from ...plots import COLORS

_HEAD = ("<div style='font-size:15pt; margin-bottom:6px'><b>L</b> = L<sub>T</sub> + "
         "Σ<sub>t=2</sub><sup>T</sup> L<sub>t−1</sub> + L<sub>0</sub></div>")
_TERMS = [("L<sub>T</sub>", "KL(q(x<sub>T</sub>|x<sub>0</sub>) ‖ N(0, I))", "prior, no parameters"),
          ("L<sub>t−1</sub>", "KL(q(x<sub>t−1</sub>|x<sub>t</sub>,x<sub>0</sub>) ‖ "
           "p<sub>θ</sub>(x<sub>t−1</sub>|x<sub>t</sub>))", "two Gaussians: closed form"),
          ("L<sub>0</sub>", "−log p<sub>θ</sub>(x<sub>0</sub>|x<sub>1</sub>)",
           "discretised Gaussian decoder"),
          ("L<sub>simple</sub>", "E<sub>t,ε</sub> ‖ε − ε<sub>θ</sub>(x<sub>t</sub>, t)‖²",
           "what DDPM trains on")]
_DEFS = "".join(f"<tr><td style='padding-right:6px'><b>{a}</b></td><td>= {b}</td></tr>"
                f"<tr><td></td><td style='color:#666; font-size:10pt'>{c}</td></tr>"
                for a, b, c in _TERMS)


def _figures(r, label: str) -> str:
    """The figures of a result: each part of the bound, the total, the mean L_simple."""
    vals = [("L<sub>T</sub>", fmt(r.prior_bpd)),
            ("Σ L<sub>t−1</sub>", fmt(kl_sum(r))),
            ("L<sub>0</sub>", fmt(r.decoder_bpd)),
            ("<b>L</b>", f"<b>{fmt(r.total_bpd)}</b>")]
    tab = "".join(f"<tr><td>{a}</td><td align='right' style='padding-left:14px'>{b}</td>"
                  f"<td style='padding-left:6px; color:#666'>bits/dim</td></tr>" for a, b in vals)
    mean_eps = float(np.average(r.eps_mse, weights=r.weights))
    how = "exact" if r.stride == 1 else f"every {r.stride}th t, KL terms interpolated"
    return (f"<hr><div style='font-size:12pt'>Scored: <b>{label}</b>, "
            f"T = {r.timesteps} ({how})</div>"
            f"<table style='font-size:14pt; margin-top:4px'>{tab}</table>"
            f"<div style='font-size:12pt; margin-top:6px'>mean L<sub>simple</sub> over t = "
            f"{fmt(mean_eps)}</div>")


def summary_html(result, label: str = "", note: str = "") -> str:
    """The formula of the bound, what each term is, and (with a ``result``) its figures;
    ``note`` (rich text) last, in orange."""
    html = _HEAD + f"<table style='font-size:12pt'>{_DEFS}</table>"
    if result is not None:
        html += _figures(result, label)
    else:
        html += ("<hr><div style='font-size:12pt; color:#444'>Choose what to score and press "
                 "<b>Compute</b>. A stride of 10 gives a quick preview; 1 the exact bound.</div>")
    if note:
        html += f"<div style='font-size:12pt; color:#B04000; margin-top:8px'>{note}</div>"
    return html


def readout_html(t: int, cursor: bool, arrays=None) -> str:
    """The values at ``t`` (the paper's): ``arrays = (t, vb_bpd, eps_mse, x0_mse)`` of the
    evaluated steps (None: nothing computed). ``cursor``: ``t`` is the forward panel's t (the
    red line), else the pointer's. Names the nearest evaluated t when ``t`` was skipped."""
    if arrays is None:
        return (f"<span style='color:{COLORS['red']}'>▍</span> forward panel's t = {t}"
                if cursor else f"t = {t}")
    tt, vb, eps, x0 = arrays
    where = "cursor" if cursor else "pointer"
    if len(tt) == 0 or t < 1:
        return f"{where}: t = {t}" + ("  (the clean image x<sub>0</sub>)" if t == 0 else "")
    k = int(np.argmin(np.abs(np.asarray(tt) - t)))
    tk = int(tt[k])
    name = "L<sub>0</sub>" if tk == 1 else "L<sub>t−1</sub>"
    near = "" if tk == t else f" (nearest evaluated: {tk})"
    return (f"{where}: <b>t = {t}</b>{near} &nbsp;·&nbsp; {name} = <b>{fmt(float(vb[k]))}</b> "
            f"bits/dim &nbsp;·&nbsp; L<sub>simple</sub> = {fmt(float(eps[k]))}"
            f" &nbsp;·&nbsp; x<sub>0</sub> MSE = {fmt(float(x0[k]))}")
