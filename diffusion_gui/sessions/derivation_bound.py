"""Steps 1-4 of the derivation as computations (see :mod:`diffusion_gui.sessions.derivation`):
the closed form of the forward process, the bound above the NLL (IWAE), why condition on x_0,
and the telescoping at T = 4. Each is a generator of ``Progress`` and one ``StepResult``.
Timesteps: the paper's ``t`` in labels; arrays indexed ``i = t - 1``."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..core import bound_estimators as be
from ..core.diffusion import GaussianDiffusion
from ..core.schedule import NoiseSchedule
from ..core.toy2d import GaussianMixture, gaussians8, mixture_of, toy_data
from ..core.toy2d_bound import bound_terms_nats
from ..core.toy2d_metrics import MixtureDenoiser, data_std
from .derivation_types import PlotData, Progress, Series, StepResult

KS = (1, 4, 16, 64, 256, 1024)
IWAE_T = 50
IWAE_REPEATS = 8
LN2 = math.log(2.0)


def f(v: float, d: int = 4) -> str:
    """A number for the table: ``d`` significant digits, no noise."""
    if v is None or not np.isfinite(v):
        return "\u2014"
    return f"{v:.{d}g}"


def gen(seed: int, k: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1000 + k)


def image_diffusion(sess) -> GaussianDiffusion:
    """The current model's diffusion, or DDPM's linear schedule with T = 1000."""
    if sess.model is not None:
        return sess.model.diffusion
    return GaussianDiffusion(NoiseSchedule.from_name("linear", 1000))


def fixed_variance(d: GaussianDiffusion) -> GaussianDiffusion:
    """``d``, or for a learned variance (per pixel) the same schedule with the derivation's fixed
    ``sigma_t^2 = beta~_t``: what lambda_t and the weights of L_simple are written for."""
    if not d.learned_variance:
        return d
    return GaussianDiffusion(d.schedule, prediction_type=d.prediction_type, clip_range=d.clip_range)


def toy_model(T: int, variance: str = "fixed_small"):
    """The 2-D lab's exact denoiser of its ring of 8 Gaussians on a linear schedule of T steps:
    ``(diffusion, model, mixture)``."""
    d = GaussianDiffusion(NoiseSchedule.from_name("linear", T), variance=variance)
    mix = gaussians8()
    return d, MixtureDenoiser(mix, d), mix


#: points of a shape's kernel density estimate (its exact denoiser stands in for a 2-D model)
KDE_POINTS = 500


def toy_mixture(name: str, seed: int = 0) -> tuple[GaussianMixture, str]:
    """The 2-D lab's data ``name`` as a Gaussian mixture and what it is: its own mixture
    (gaussians8, gmm), or a Gaussian KDE of ``KDE_POINTS`` of its points (Scott's bandwidth)."""
    mix = mixture_of(name)
    if mix is not None:
        return mix, "exact mixture"
    pts = toy_data(name, KDE_POINTS, seed)
    return (GaussianMixture.from_points(pts, data_std(pts) * len(pts) ** (-1 / 6)),
            f"KDE of {KDE_POINTS} points (Scott)")


def toy_point(seed: int) -> torch.Tensor:
    """One data point of the ring ``[1, 2]`` float64."""
    return torch.from_numpy(gaussians8().sample(1, seed).astype(np.float64))


# ---------------------------------------------------------------- 1. chaining = closed form
def chaining(sess):
    d = image_diffusion(sess)
    T, n, x0 = d.num_timesteps, 20000, 0.6
    g = gen(sess.settings.seed)
    x = torch.full((n, 1), x0, dtype=torch.float64)
    mean, std = np.zeros(T), np.zeros(T)
    for i in range(T):
        x = d.q_step(x, i, torch.randn(x.shape, generator=g, dtype=torch.float64))
        mean[i], std[i] = float(x.mean()), float(x.std())
        if i % 200 == 199:
            yield Progress((i + 1) / T, f"chained {i + 1} of {T} steps")
    s = d.schedule
    cm, cs = (s.sqrt_alpha_bars * x0).numpy(), s.sqrt_one_minus_alpha_bars.numpy()
    z_mean = np.abs(mean - cm) / (cs / math.sqrt(n))
    z_std = np.abs(std - cs) / (cs / math.sqrt(2 * n))
    t = np.arange(1, T + 1)
    pick = np.unique(np.linspace(0, T - 1, 26).astype(int))
    rows = [("pixel x\u2080", f(x0)), ("chains", f"{n}")]
    for tt in sorted({1, 10, T // 10, T // 2, T}):
        i = tt - 1
        rows.append((f"t = {tt}: mean chained / closed", f"{mean[i]:.4f} / {cm[i]:.4f}"))
        rows.append((f"t = {tt}: std chained / closed", f"{std[i]:.4f} / {cs[i]:.4f}"))
    rows.append(("largest gap, in standard errors", f"{max(z_mean.max(), z_std.max()):.2f}"))
    plot = PlotData(f"{n} chains of one pixel x\u2080 = {x0} (T = {T})", "t", "x\u209c",
                    [Series("\u221a\u0101\u209c x\u2080 (closed form)", t, cm, "line", "blue"),
                     Series("mean of the chains", t[pick], mean[pick], "points", "blue"),
                     Series("\u221a(1 \u2212 \u0101\u209c) (closed form)", t, cs, "line", "orange"),
                     Series("std of the chains", t[pick], std[pick], "points", "orange")],
                    note="t single steps  =  one jump with \u0101\u209c", legend="middle-right")
    verdict = (f"Chaining t steps and the one-jump closed form agree at every t to within "
               f"{max(z_mean.max(), z_std.max()):.1f} standard errors of {n} chains.")
    yield StepResult("chaining", rows, plot, verdict,
                     {"z_max": float(max(z_mean.max(), z_std.max())), "T": T})


# ---------------------------------------------------------------- 2. the bound above the NLL
def iwae(sess):
    seed = sess.settings.seed
    pool = IWAE_REPEATS * KS[-1]
    d1 = GaussianDiffusion(NoiseSchedule.from_name("linear", IWAE_T))
    mix = be.Mixture1D()
    m1 = be.Mixture1DDenoiser(mix, d1)
    x0v = 0.5
    yield Progress(0.05, "1-D: the exact likelihood on a grid")
    exact = float(be.exact_nll_1d(m1, d1, [x0v])[0])
    yield Progress(0.3, f"1-D: {pool} forward trajectories")
    x1 = torch.full((pool, 1), x0v, dtype=torch.float64)
    tt1 = be.run_terms(be.trajectory_terms(m1, d1, x1, generator=gen(seed, 1), model_dtype=torch.float64,
                                           t_batch=pool * IWAE_T))
    c1 = be.iwae_curve(tt1.log_weights, KS)
    vlb1 = bound_terms_nats(d1, m1, x1[:4096], seed=seed, model_dtype=torch.float64)["total"]
    yield Progress(0.6, f"2-D: {pool} forward trajectories")
    mix2, what2 = toy_mixture(sess.settings.toy, seed)
    d2 = GaussianDiffusion(NoiseSchedule.from_name("linear", IWAE_T))
    m2 = MixtureDenoiser(mix2, d2)
    x2 = torch.from_numpy(mix2.sample(1, seed).astype(np.float64)).repeat(pool, 1)
    tt2 = be.run_terms(be.trajectory_terms(m2, d2, x2, generator=gen(seed, 2), model_dtype=torch.float64,
                                           t_batch=pool * IWAE_T))
    c2 = be.iwae_curve(tt2.log_weights, KS)
    # "does not rise with K beyond its error bars": the largest rise between successive K, in SEs
    se_pair = np.sqrt(np.nan_to_num(c1["se"][1:]) ** 2 + np.nan_to_num(c1["se"][:-1]) ** 2)
    rise = float(np.max((c1["mean"][1:] - c1["mean"][:-1]) / np.maximum(se_pair, 1e-12)))
    k1_vs_vlb = (c1["mean"][0] - vlb1) / c1["se"][0]
    rows = [("1-D model: 2 Gaussians, exact \u03b5*", f"T = {IWAE_T}"), ("x\u2080", f(x0v)),
            ("\u2212log p\u03b8(x\u2080), exact on a grid", f(exact, 5))]
    for k, mu, se in zip(c1["k"], c1["mean"], c1["se"]):
        if k in (1, 16, 1024):
            rows.append((f"K = {k}", f"{mu:.4f} \u00b1 {se:.4f}"))
    rows += [("VLB (closed-form KLs, 4096 draws)", f(vlb1, 5)),
             ("K = 1 minus VLB, in its SE", f"{k1_vs_vlb:+.2f}"),
             ("gap at K = 1 = KL(q \u2016 p\u03b8 posterior)", f(c1["mean"][0] - exact)),
             (f"gap left at K = {KS[-1]}", f(c1["mean"][-1] - exact)),
             ("largest rise between K's, in SE", f"{rise:.2f}"),
             (f"2-D {sess.settings.toy} ({what2}), one point: K = 1 / {KS[-1]} (nats/dim)",
              f"{c2['mean'][0] / 2:.4f} / {c2['mean'][-1] / 2:.4f}")]
    plot = PlotData(f"The importance-weighted bound against K (T = {IWAE_T}, {IWAE_REPEATS}+ groups per K)",
                    "K (forward trajectories)", "nats per dimension",
                    [Series("\u2212log p\u03b8(x\u2080), exact (1-D grid)", np.array([1, KS[-1]]),
                            np.array([exact, exact]), "dashed", "black"),
                     Series("1-D mixture: bound \u00b1 SE", c1["k"], c1["mean"], "points", "blue", c1["se"]),
                     Series(f"2-D {sess.settings.toy} point: bound \u00b1 SE", c2["k"], c2["mean"] / 2, "points", "orange",
                            c2["se"] / 2)],
                    log_x=True,
                    note="gap = KL(q(x\u2081:T | x\u2080) \u2016 p\u03b8(x\u2081:T | x\u2080)) \u2265 0")
    gap, se_last = c1["mean"][-1] - exact, float(np.nan_to_num(c1["se"][-1]))
    verdict = (f"K = 1 is the VLB ({c1['mean'][0]:.3f}, within {abs(k1_vs_vlb):.1f} SE); by K = {KS[-1]} the "
               f"bound has fallen to {c1['mean'][-1]:.3f}, {gap:+.3f} from the exact "
               f"\u2212log p\u03b8(x\u2080) = {exact:.3f} ({abs(gap) / max(se_last, 1e-12):.1f} SE).")
    yield StepResult("iwae", rows, plot, verdict,
                     {"curve": c1, "curve2d": c2, "toy": sess.settings.toy, "toy_model": what2, "exact": exact, "vlb": vlb1, "rise_se": rise,
                      "k1_vs_vlb_se": float(k1_vs_vlb)})


# ---------------------------------------------------------------- 3. why condition on x_0
def _est_rows(name, tt, scale, unit):
    a, b = tt.plain * scale, tt.rao_blackwell * scale
    n = len(a)
    se = (a - b).std(ddof=1) / math.sqrt(n)      # paired: (a) and (b) share the trajectories
    ratio = np.median(tt.plain_step_std[1:] / np.maximum(tt.rb_step_std[1:], 1e-300))
    return [(f"{name}: {n} trajectories, T = {tt.timesteps}, {unit}", ""),
            ("(a) plain MC: mean \u00b1 SE", f"{a.mean():.4f} \u00b1 {a.std(ddof=1) / math.sqrt(n):.4f}"),
            ("(b) closed-form KLs: mean \u00b1 SE", f"{b.mean():.4f} \u00b1 {b.std(ddof=1) / math.sqrt(n):.4f}"),
            ("std (a) / std (b)", f(a.std(ddof=1) / b.std(ddof=1), 3)),
            ("variance ratio (a) / (b)", f(a.var(ddof=1) / b.var(ddof=1), 3)),
            ("|mean (a) \u2212 mean (b)| / SE of the paired difference", f"{abs(a.mean() - b.mean()) / se:.2f}"),
            ("one term: std (a) / std (b), median over t", f(ratio, 3))], ratio


def estimators(sess):
    seed = sess.settings.seed
    yield Progress(0.02, "2-D point: 512 trajectories")
    d2, m2, _ = toy_model(1000)
    tt2 = be.run_terms(be.trajectory_terms(m2, d2, toy_point(seed).repeat(512, 1), generator=gen(seed, 3),
                                           model_dtype=torch.float64, t_batch=65536))
    rows2, r2 = _est_rows("2-D ring point", tt2, 0.5, "nats/dim")
    main, scale, unit, name = tt2, 0.5, "nats/dim", "2-D ring point"
    rows, ratio = [], r2
    if sess.model is not None:
        n = sess.settings.trajectories
        x = sess.digits(1).repeat(n, 1, 1, 1)
        d = sess.model.diffusion
        last = None
        for done, total, last in be.trajectory_terms(sess.model, d, x, decoder="discretized",
                                                     generator=gen(seed, 4), t_batch=256):
            yield Progress(0.05 + 0.95 * done / total, f"image: {n} trajectories, step {done} of {total}")
        scale, unit, name = 1.0 / (last.dims * LN2), "bits/dim", "held-out digit"
        rows, ratio = _est_rows("held-out digit", last, scale, unit)
        main = last
    a, b = main.plain * scale, main.rao_blackwell * scale
    k = np.arange(1, len(a) + 1)
    sea = np.array([a[:j].std(ddof=1) / math.sqrt(j) if j > 1 else np.nan for j in k])
    seb = np.array([b[:j].std(ddof=1) / math.sqrt(j) if j > 1 else np.nan for j in k])
    plot = PlotData(f"Running means on one {name} (T = {main.timesteps}), \u00b1 1 SE", "samples (forward trajectories)",
                    unit,
                    [Series("(a) log q(x\u2081:T|x\u2080) \u2212 log p\u03b8(x\u2080:T)", k, be.running_mean(a),
                            "band", "orange", sea),
                     Series("(b) L_T + \u03a3 KL + L\u2080", k, be.running_mean(b), "band", "blue", seb)],
                    note=f"one term's spread: (a) {ratio:.3g}\u00d7 (b) (median over t)")
    sd = a.std(ddof=1) / b.std(ddof=1)
    verdict = (f"Same mean; one term of (a) spreads {ratio:.3g}\u00d7 more than its closed-form KL, "
               f"but summed over a whole trajectory (a)'s terms partly cancel (they telescope): "
               f"std (a) / std (b) = {sd:.2f}.")
    yield StepResult("estimators", rows + rows2, plot, verdict,
                     {"image": main if sess.model is not None else None, "toy": tt2, "scale": scale})


# ---------------------------------------------------------------- 4. telescoping at T = 4
def telescoping(sess):
    d4, m4, _ = toy_model(4)
    r = be.telescoping(m4, d4, toy_point(sess.settings.seed), generator=gen(sess.settings.seed, 5))
    rows = [("x\u2080 (a point of the 2-D ring, exact \u03b5*)", ", ".join(f"{v:.3f}" for v in r["x"][0])),
            ("the factors that telescope", "")]
    for t, lr in zip(range(2, 5), r["telescoped_ratios"]):
        rows.append((f"factor q(x{_sub(t)}|x\u2080) / q(x{_sub(t - 1)}|x\u2080)", f(math.exp(lr), 6)))
    rows += [("product of the three factors", f(math.exp(r["product_of_ratios"]), 8)),
             ("cancelled: q(x\u2084|x\u2080) / q(x\u2081|x\u2080)", f(math.exp(r["cancelled"]), 8)),
             ("Bayes' rule for each t: largest residual (nats)", f"{r['bayes_residual']:.1e}"),
             ("log q(x\u2081:\u2084|x\u2080) / p\u03b8(x\u2080:\u2084) on this trajectory", ""),
             ("the chain: \u2212log p(x\u2084) + \u03a3 log q(x\u209c|x\u209c\u208b\u2081) / p\u03b8", f(r["direct"], 10)),
             ("with x\u2080: log q(x\u2084|x\u2080)/p(x\u2084) + \u03a3 log q(x\u209c\u208b\u2081|x\u209c,x\u2080)/p\u03b8 "
              "\u2212 log p\u03b8(x\u2080|x\u2081)", f(r["rewritten"], 10)),
             ("residual (nats)", f"{r['residual']:.1e}")]
    lq, lp, prior = r["log_q_step"], r["log_p_step"], r["log_prior"]
    direct = [-prior] + [lq[i] - lp[i] for i in (3, 2, 1, 0)]
    lqm, lqp = r["log_q_marginal"], [None] + r["log_q_posterior"]
    rewritten = [lqm[3] - prior] + [lqp[i] - lp[i] for i in (3, 2, 1)] + [-lp[0]]
    x = np.arange(5, dtype=float)
    ticks = [(0, "x\u2084 term"), (1, "t = 4"), (2, "t = 3"), (3, "t = 2"), (4, "t = 1")]
    plot = PlotData("Running total of log q(x\u2081:\u2084|x\u2080) / p\u03b8(x\u2080:\u2084), term by term (T = 4)",
                    "term added", "nats",
                    [Series("the chain: q(x\u209c | x\u209c\u208b\u2081) / p\u03b8(x\u209c\u208b\u2081 | x\u209c)", x, np.cumsum(direct),
                            "points", "orange"),
                     Series("with x\u2080: q(x\u209c\u208b\u2081 | x\u209c, x\u2080) / p\u03b8 (telescoped)", x, np.cumsum(rewritten),
                            "points", "blue"),
                     Series("", x, np.cumsum(direct), "line", "orange"),
                     Series("", x, np.cumsum(rewritten), "line", "blue")],
                    note=f"both end at {r['direct']:.6f}", x_ticks=ticks, legend="top-left")
    verdict = (f"The product of the factors equals the cancelled form, and both forms of the log ratio "
               f"give {r['direct']:.6f} (residual {r['residual']:.0e}).")
    yield StepResult("telescoping", rows, plot, verdict, r)


def _sub(t: int) -> str:
    return "".join("\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089"[int(c)] for c in str(t))
