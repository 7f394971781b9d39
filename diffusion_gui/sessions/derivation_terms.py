"""Steps 5-8 of the derivation as computations (see :mod:`diffusion_gui.sessions.derivation`):
L_T, the variance of p_theta, the KL as a weighted noise MSE and L_simple. Each is a generator
of ``Progress`` and one ``StepResult``. Timesteps: the paper's ``t``; arrays ``i = t - 1``."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..core import bound_estimators as be
from ..core.diffusion import GaussianDiffusion
from ..core.sampling import run, sampler
from ..core.schedule import NoiseSchedule, named_betas
from ..core.toy2d import toy_data
from ..core.toy2d_bound import bound_terms_nats, train_objective
from ..core.toy2d_metrics import energy_distance, energy_floor
from ..core.toy2d_mlp import Sampled
from ..core.vlb import compute_vlb
from .derivation_bound import LN2, f, fixed_variance, gen, image_diffusion, toy_model
from .derivation_types import PlotData, Progress, Series, StepResult

T_GRID = (10, 20, 50, 100, 200, 500, 1000)


def _x0(sess, n: int):
    """``(x0, unit, scale)``: held-out digits (bits/dim) or, without a model, 2-D ring points
    (nats/dim)."""
    if sess.model is not None:
        return sess.digits(n), "bits/dim", 1.0 / LN2
    return torch.from_numpy(toy_data("gaussians8", 500, sess.settings.seed).astype(np.float64)), "nats/dim", 1.0


def _prior(d: GaussianDiffusion, x0) -> float:
    return float(be.prior_kl(d, x0).mean()) / x0[0].numel()


# ---------------------------------------------------------------- 5. L_T
def prior(sess):
    x0, unit, scale = _x0(sess, 8)
    d = image_diffusion(sess)
    T = d.num_timesteps
    rescaled = np.array([_prior(GaussianDiffusion(NoiseSchedule.from_name("linear", k)), x0) for k in T_GRID])
    raw = np.array([_prior(GaussianDiffusion(NoiseSchedule(named_betas("linear", k, beta_start=1e-4,
                                                                        beta_end=0.02))), x0) for k in T_GRID])
    d100 = GaussianDiffusion(NoiseSchedule(named_betas("linear", 100, beta_start=1e-4, beta_end=0.02)))
    now = _prior(d, x0) * scale
    what = "8 held-out digits" if sess.model is not None else "500 points of the 2-D ring"
    rows = [("data", what), ("schedule", f"{d.schedule.name}, T = {T}"),
            ("\u0101_T", f(float(d.schedule.alpha_bars[-1]), 3)),
            (f"L_T now ({unit})", f(now, 3)),
            ("T = 100, betas 1e-4..0.02 not rescaled: \u0101_T", f(float(d100.schedule.alpha_bars[-1]), 3)),
            (f"  its L_T ({unit})", f(_prior(d100, x0) * scale, 3)),
            (f"T = 100 rescaled (betas \u00d7 10): L_T ({unit})",
             f(_prior(GaussianDiffusion(NoiseSchedule.from_name("linear", 100)), x0) * scale, 3))]
    plot = PlotData(f"L_T of {what} against T", "T (steps)", f"L_T ({unit})",
                    [Series("linear, betas rescaled by 1000/T", np.array(T_GRID, float), rescaled * scale,
                            "points", "blue"),
                     Series("", np.array(T_GRID, float), rescaled * scale, "line", "blue"),
                     Series("linear 1e-4..0.02 as published (not rescaled)", np.array(T_GRID, float),
                            raw * scale, "points", "red"),
                     Series("", np.array(T_GRID, float), raw * scale, "line", "red"),
                     Series("the current model", np.array([float(T)]), np.array([max(now, 1e-12)]), "points",
                            "black")],
                    log_x=True, log_y=True, note="no \u03b8 in L_T: a constant of the schedule and the data",
                    legend="bottom-right")
    abar_T = float(d.schedule.alpha_bars[-1])
    verdict = ((f"L_T = {now:.2g} {unit} for this schedule: nothing to learn and next to nothing to gain; "
                if now < 1e-3 else
                f"L_T = {now:.3g} {unit} for this schedule (\u0101_T = {abar_T:.3g}): nothing to learn, but it "
                f"does not reach noise, and the bound pays for that; ")
               + f"a schedule that stops short of noise (T = 100, not rescaled) leaves {_prior(d100, x0) * scale:.3g}.")
    yield StepResult("prior", rows, plot, verdict, {"now": now, "rescaled": rescaled, "raw": raw})


# ---------------------------------------------------------------- 6. the variance of p_theta
VARIANCE_COLORS = {"fixed_small": "blue", "fixed_large": "orange", "learned_range": "green"}
_LAB_RUNS = (("simple", "fixed_small", "L_simple MLP"), ("hybrid", "learned_range", "L_hybrid MLP"))


def _lab_variances(sess, done: float, share: float):
    """The 2-D ring on T = 100: an MLP trained with L_simple (fixed variance) and one with
    L_hybrid (learned_range), the same steps and seed each, and the bound of each on 2000
    held-out points under every variance it can use (nats/dim). Yields Progress; returns
    ``{run: {variance: bound dict}}``."""
    T, seed, steps = 100, sess.settings.seed, sess.settings.lab_steps
    sched = NoiseSchedule.from_name("linear", T)
    held = toy_data("gaussians8", 2000, seed + 21).astype(np.float64)
    out = {}
    for k, (obj, var, _) in enumerate(_LAB_RUNS):
        rng = np.random.default_rng(seed + 20)

        def data(rng=rng):
            return torch.from_numpy(toy_data("gaussians8", 256, rng))
        state = None
        for item in train_objective(GaussianDiffusion(sched, variance=var), data, obj, steps=steps, seed=seed):
            if isinstance(item, tuple):
                yield Progress(done + share * (k + 0.8 * item[0] / steps) / 2,
                               f"2-D ring: training with {obj}, step {item[0]} of {steps}")
            else:
                state = item
        net = Sampled(state.ema)
        evals = ("fixed_small", "fixed_large") + (("learned_range",) if var == "learned_range" else ())
        out[obj] = {v: bound_terms_nats(GaussianDiffusion(sched, variance=v), net, held, seed=seed)
                    for v in evals}
    return out


def _image_variances(sess, done: float, share: float):
    """The current image model's bound on 4 held-out digits (bits/dim, t-stride 10) under each
    variance it can use: the two fixed ones, and its own learned one if it has it."""
    md = sess.model.diffusion
    x0 = sess.digits(4).to(torch.float32)
    evals = ("fixed_small", "fixed_large") + (("learned_range",) if md.learned_variance else ())
    res = {}
    for k, v in enumerate(evals):
        yield Progress(done + share * k / len(evals), f"image bound with {v}")
        d = GaussianDiffusion(md.schedule, variance=v, prediction_type=md.prediction_type)
        r = compute_vlb(sess.model, d, x0, stride=10, t_batch=32, generator=gen(sess.settings.seed, 6))
        res[v] = {"t": r.t, "terms": r.vb_bpd, "total": r.total_bpd, "decoder": r.decoder_bpd}
    return res


def variance(sess):
    image = sess.model is not None
    lab = yield from _lab_variances(sess, 0.0, 0.5 if image else 1.0)
    toy = {}
    for v in ("fixed_small", "fixed_large"):
        d2, m2, mix = toy_model(100, v)
        pts = mix.sample(1000, sess.settings.seed + 1).astype(np.float64)
        toy[v] = bound_terms_nats(d2, m2, pts, seed=sess.settings.seed, model_dtype=torch.float64)
    rows = []
    res = (yield from _image_variances(sess, 0.5, 0.5)) if image else None
    if image:
        rows.append((f"{sess.model.name}: 4 held-out digits, bits/dim (t-stride 10)", ""))
        rows += [(f"{v}{' (its own)' if v == sess.model.diffusion.variance else ''}: bound, L\u2080",
                  f"{res[v]['total']:.3f},  {res[v]['decoder']:.3f}") for v in res]
        if not sess.model.diffusion.learned_variance:
            rows.append(("learned_range", "needs a learned model (digits-learned)"))
    steps = sess.settings.lab_steps
    rows.append((f"2-D ring MLP, {steps} steps each, T = 100, nats/dim", ""))
    for obj, var, label in _LAB_RUNS:
        rows += [(f"{label}, {v}", f(r["total"], 4)) for v, r in lab[obj].items()]
    rows.append(("2-D ring, the exact \u03b5*, nats/dim", ""))
    rows += [(v, f(toy[v]["total"], 4)) for v in toy]
    if image:
        series = [Series(v, np.asarray(r["t"], float), np.maximum(np.asarray(r["terms"]), 1e-12), "line",
                         VARIANCE_COLORS[v]) for v, r in res.items()]
        title, unit = f"{sess.model.name}: one term of the bound per t, one network, each variance", "bits/dim"
        shown = res
    else:
        shown = lab["hybrid"]
        series = [Series(v, np.asarray(r["t"][1:], float), np.maximum(np.asarray(r["terms"][1:]), 1e-12),
                         "line", VARIANCE_COLORS[v]) for v, r in shown.items()]
        title, unit = "2-D ring, the L_hybrid MLP: one KL term per t, each variance", "nats/dim"
    best = min(shown, key=lambda v: shown[v]["total"])
    plot = PlotData(title, "t", f"L_(t\u22121) ({unit})", series, log_y=True, log_x=True,
                    note="total: " + ", ".join(f"{v} {r['total']:.3f}" for v, r in shown.items()) + f" {unit}")
    learned = lab["hybrid"]["learned_range"]["total"]
    fixed_best = min(r["total"] for r in lab["simple"].values())
    verdict = (f"On the 2-D ring the learned variance gives the bound {learned:.3f} nats/dim against "
               f"{fixed_best:.3f} for the best fixed one ({'lower' if learned < fixed_best else 'not lower'})"
               + (f"; the {sess.model.name} model's lowest bound is with {best} ({res[best]['total']:.3f} bits/dim)"
                  if image else "") + ".")
    yield StepResult("variance", rows, plot, verdict, {"image": res, "toy": toy, "lab": lab})


# ---------------------------------------------------------------- 7. the KL as a weighted eps-MSE
def kl_mse(sess):
    if sess.model is not None:
        model, base, x0, what = sess.model, sess.model.diffusion, sess.digits(4), "4 held-out digits"
        dtype = torch.float32
    else:
        base, model, mix = toy_model(1000)
        x0 = torch.from_numpy(mix.sample(256, sess.settings.seed).astype(np.float64))
        what, dtype = "256 points of the 2-D ring", torch.float64
    T = base.num_timesteps
    t_values = sorted({int(v) for v in np.geomspace(2, T, 20)})
    out, lam = {}, {}
    for k, v in enumerate(("fixed_small", "fixed_large")):
        yield Progress(0.1 + 0.45 * k, f"KL and MSE with {v}")
        d = GaussianDiffusion(base.schedule, variance=v, prediction_type=base.prediction_type)
        out[v] = be.kl_vs_weighted_mse(model, d, x0, t_values, generator=gen(sess.settings.seed, 7),
                                       model_dtype=dtype)
        lam[v] = be.lambda_weights(d)
    s = base.schedule
    d_small = GaussianDiffusion(s, variance="fixed_small")
    # lambda_t from the posterior mean's coefficient, an independent route: coef1^2 (1/abar - 1) / (2 sigma^2)
    indep = (s.posterior_mean_coef1 ** 2 * (1 / s.alpha_bars - 1) / (2 * torch.exp(d_small.model_log_variance))).numpy()
    lam_rel = float(np.max(np.abs(indep - lam["fixed_small"]) / indep))
    lg = out["fixed_large"]
    no_c = float(np.max(np.abs(lg["kl"] - lg["lambda"] * lg["mse"]) / lg["kl"]))
    rows = [(f"{what}, {len(t_values)} values of t in 2..{T}", ""),
            ("\u03bb_t vs coef1\u00b2 (1/\u0101_t \u2212 1) / 2\u03c3_t\u00b2: max rel. diff.", f"{lam_rel:.1e}"),
            ("fixed_small", ""),
            ("KL vs \u03bb_t \u00b7 MSE: max rel. diff.", f"{out['fixed_small']['max_rel']:.1e}"),
            ("fixed_large", ""),
            ("KL vs \u03bb_t \u00b7 MSE + C_t: max rel. diff.", f"{lg['max_rel']:.1e}"),
            ("KL vs \u03bb_t \u00b7 MSE alone: max rel. diff.", f(no_c, 3)),
            ("C_t at t = 2 (nats/dim)", f(float(be.kl_constant(
                GaussianDiffusion(s, variance="fixed_large"))[1]), 3)),
            ("\u03bb_t at t = 2 / t = T, fixed_small", f"{lam['fixed_small'][1]:.3g} / {lam['fixed_small'][-1]:.3g}")]
    t = np.arange(1, T + 1, dtype=float)
    tv = np.asarray(t_values, float)
    sm = out["fixed_small"]
    plot = PlotData(f"\u03bb_t against t, and KL / MSE measured on {what}", "t", "\u03bb_t (nats per unit MSE)",
                    [Series("\u03bb_t, fixed_small", t[1:], lam["fixed_small"][1:], "line", "blue"),
                     Series("\u03bb_t, fixed_large", t[1:], lam["fixed_large"][1:], "line", "orange"),
                     Series("measured KL / MSE, fixed_small", tv, sm["kl"] / sm["mse"], "points", "blue"),
                     Series("measured (KL \u2212 C_t) / MSE, fixed_large", tv, (lg["kl"] - lg["constant"]) / lg["mse"],
                            "points", "orange")],
                    log_y=True, log_x=True, note="L_(t\u22121) = \u03bb_t \u2016\u03b5 \u2212 \u03b5\u03b8\u2016\u00b2 + C_t")
    verdict = (f"fixed_small: the KL is \u03bb_t times the noise MSE to {sm['max_rel']:.0e}; fixed_large: "
               f"a constant C_t apart (to {lg['max_rel']:.0e} with it, {no_c:.2g} without).")
    yield StepResult("kl_mse", rows, plot, verdict, {"out": out, "lambda_rel": lam_rel, "no_constant_rel": no_c})


# ---------------------------------------------------------------- 8. L_simple drops lambda_t
def simple(sess):
    d = fixed_variance(image_diffusion(sess))
    lam = be.lambda_weights(d)
    b_share, s_share = be.weight_shares(lam), be.weight_shares(np.ones_like(lam))
    T = d.num_timesteps
    seed, steps = sess.settings.seed, sess.settings.lab_steps
    d2 = GaussianDiffusion(NoiseSchedule.from_name("linear", 100))
    held = toy_data("gaussians8", 2000, seed + 11).astype(np.float64)
    ref = toy_data("gaussians8", 4000, seed + 12)
    res = {}
    for k, obj in enumerate(("simple", "vlb")):
        rng = np.random.default_rng(seed)          # the same batches for each objective

        def data(rng=rng):
            return torch.from_numpy(toy_data("gaussians8", 256, rng))
        state = None
        for item in train_objective(d2, data, obj, steps=steps, seed=seed):
            if isinstance(item, tuple):
                yield Progress(0.45 * k + 0.4 * item[0] / steps, f"training on {obj}: step {item[0]} of {steps}")
            else:
                state = item
        net = Sampled(state.ema)
        yield Progress(0.45 * k + 0.42, f"scoring the {obj}-trained MLP")
        bound = bound_terms_nats(d2, net, held, seed=seed)["total"]
        smp = run(sampler("ddpm", net, d2, (2000, 2), generator=gen(seed, 8))).numpy()
        res[obj] = {"bound": bound, "energy": energy_distance(smp, ref)}
    floor = energy_floor(ref, 2000, len(ref))
    rows = [(f"the weights, {d.schedule.name} schedule, T = {T}", ""),
            (f"the bound (\u03bb_t) on t \u2264 {T // 10}", f"{100 * b_share[0]:.1f} %"),
            (f"L_simple on t \u2264 {T // 10}", f"{100 * s_share[0]:.1f} %"),
            (f"2-D ring MLP: {steps} steps each, batch 256, T = 100", ""),
            ("L_simple-trained: bound (nats/dim)", f(res["simple"]["bound"], 4)),
            ("L_VLB-trained (\u03bb-weighted): bound (nats/dim)", f(res["vlb"]["bound"], 4)),
            ("L_simple-trained: energy distance", f(res["simple"]["energy"], 3)),
            ("L_VLB-trained: energy distance", f(res["vlb"]["energy"], 3)),
            ("two fresh draws of the data (floor)", f(floor, 3))]
    better_b = "L_VLB" if res["vlb"]["bound"] < res["simple"]["bound"] else "L_simple"
    better_s = "L_simple" if res["simple"]["energy"] < res["vlb"]["energy"] else "L_VLB"
    edges = [f"\u2264{(b + 1) * T // 10}" for b in range(10)]
    x = np.arange(10, dtype=float)
    plot = PlotData(f"Share of the total weight per tenth of t (T = {T})", "t (each tenth, by its upper end)",
                    "share of the weight",
                    [Series("the bound: \u03bb_t", x - 0.2, b_share, "bars", "blue", width=0.38),
                     Series("L_simple: 1 for every t", x + 0.2, s_share, "bars", "orange", width=0.38)],
                    x_ticks=[(k, e) for k, e in enumerate(edges)],
                    note=f"better bound: {better_b}; better samples: {better_s}")
    verdict = (f"The bound puts {100 * b_share[0]:.0f} % of its weight on the first tenth of t, L_simple "
               f"{100 * s_share[0]:.0f} %. On the 2-D ring {better_b} gives the better bound and {better_s} "
               f"the better samples (Ho et al.: L_simple better samples, worse bound).")
    yield StepResult("simple", rows, plot, verdict, {"shares": (b_share, s_share), "lab": res, "floor": floor})


__all__ = ["prior", "variance", "kl_mse", "simple", "math"]
