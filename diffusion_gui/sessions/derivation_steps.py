"""The steps of the derivation, in the order of the notes: each one's equation (matplotlib
mathtext), the panel that shows it at full size and its computation."""
from __future__ import annotations

from .derivation_types import Step


def _lazy(module: str, name: str):
    """The computation ``module.name``, imported on its first call: the step list (and the panel
    that shows it) must not import torch on the GUI thread."""
    def compute(*args, **kw):
        import importlib
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(*args, **kw)
    compute.__name__ = name
    return compute


class _Module:
    def __init__(self, module: str):
        self.module = module

    def __getattr__(self, name: str):
        return _lazy(self.module, name)


b, m = _Module("derivation_bound"), _Module("derivation_terms")

STEPS = (
    Step("chaining", "1. Chaining = the closed form",
         (r"$x_t=\sqrt{\alpha_t}\,x_{t-1}+\sqrt{\beta_t}\,\epsilon_t\qquad\Longrightarrow\qquad"
          r"x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\epsilon$",
          r"$\bar\alpha_t=\prod_{s=1}^{t}\alpha_s,\qquad q(x_t\,|\,x_0)="
          r"\mathcal{N}(\sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\,I)$"),
         b.chaining, "forward", "Forward panel",
         blurb="t small Gaussian steps make one Gaussian jump: the Forward panel scrubs it on an image."),
    Step("iwae", "2. The bound is above the NLL",
         (r"$-\log p_\theta(x_0)\ \leq\ \mathcal{L}_K=\mathbb{E}\left[-\log\frac{1}{K}\sum_{k=1}^{K}"
          r"\frac{p_\theta(x^k_{0:T})}{q(x^k_{1:T}\,|\,x_0)}\right]\ \leq\ \mathcal{L}_1=L_{\mathrm{VLB}}$",
          r"$L_{\mathrm{VLB}}-(-\log p_\theta(x_0))=D_{\mathrm{KL}}(q(x_{1:T}\,|\,x_0)\ \|\ "
          r"p_\theta(x_{1:T}\,|\,x_0))\ \geq\ 0$"),
         b.iwae, "lab2d", "2-D lab",
         blurb="The NLL needs an integral over every path; K sampled paths bound it, tighter as K grows."),
    Step("estimators", "3. Why condition on x\u2080",
         (r"$\mathrm{(a)}\quad\log q(x_{1:T}\,|\,x_0)-\log p_\theta(x_{0:T})$",
          r"$\mathrm{(b)}\quad D_{\mathrm{KL}}(q(x_T|x_0)\,\|\,p(x_T))+\sum_{t=2}^{T}D_{\mathrm{KL}}"
          r"(q(x_{t-1}|x_t,x_0)\,\|\,p_\theta(x_{t-1}|x_t))-\log p_\theta(x_0|x_1)$",
          r"$\mathbb{E}\,\mathrm{(a)}=\mathbb{E}\,\mathrm{(b)}:\ \ q(x_{t-1}|x_t,x_0)\ "
          r"\mathrm{is\ a\ Gaussian,\ so\ each\ KL\ is\ a\ closed\ form}$"),
         b.estimators, "losses", "Losses panel", uses_image_model=True,
         blurb="Two estimators of one bound on the same trajectories: their means and their spreads."),
    Step("telescoping", "4. Telescoping at T = 4",
         (r"$q(x_t\,|\,x_{t-1})=\frac{q(x_{t-1}\,|\,x_t,x_0)\;q(x_t\,|\,x_0)}{q(x_{t-1}\,|\,x_0)}$",
          r"$\prod_{t=2}^{4}\frac{q(x_t|x_0)}{q(x_{t-1}|x_0)}=\frac{q(x_2|x_0)}{q(x_1|x_0)}\cdot"
          r"\frac{q(x_3|x_0)}{q(x_2|x_0)}\cdot\frac{q(x_4|x_0)}{q(x_3|x_0)}=\frac{q(x_4|x_0)}{q(x_1|x_0)}$"),
         b.telescoping, "lab2d", "2-D lab",
         blurb="Bayes' rule with x\u2080 turns the chain into KLs; the marginals cancel pairwise."),
    Step("prior", "5. L_T has no parameters",
         (r"$L_T=D_{\mathrm{KL}}(q(x_T\,|\,x_0)\ \|\ \mathcal{N}(0,I)),\qquad q(x_T\,|\,x_0)="
          r"\mathcal{N}(\sqrt{\bar\alpha_T}\,x_0,\ (1-\bar\alpha_T)\,I)$",),
         m.prior, "losses", "Losses panel", uses_image_model=True,
         blurb="No \u03b8 in L_T: it is fixed by the schedule, tiny when x_T reaches noise."),
    Step("variance", "6. The variance of p\u03b8",
         (r"$p_\theta(x_{t-1}\,|\,x_t)=\mathcal{N}(\mu_\theta(x_t,t),\ \Sigma_\theta(x_t,t))$",
          r"$\Sigma_\theta=\sigma_t^2I:\quad\sigma_t^2=\tilde\beta_t=\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}"
          r"\beta_t\ \ \mathrm{(fixed\ small)}\quad\mathrm{or}\quad\sigma_t^2=\beta_t\ \ \mathrm{(fixed\ large)}$",
          r"$\mathrm{or\ learned:}\ \ \log\Sigma_\theta=u\,\log\beta_t+(1-u)\log\tilde\beta_t,\ \ "
          r"u=\frac{v_\theta(x_t,t)+1}{2};\qquad L_{\mathrm{hybrid}}=L_{\mathrm{simple}}+0.001\,L_{\mathrm{vlb}}$"),
         m.variance, "losses", "Losses panel", uses_image_model=True,
         blurb="Fixed or learned (improved DDPM): the bound of each on held-out data."),
    Step("kl_mse", "7. KL = a weighted noise MSE",
         (r"$\mu_\theta(x_t,t)=\frac{1}{\sqrt{\alpha_t}}\left(x_t-\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}"
          r"\,\epsilon_\theta(x_t,t)\right)$",
          r"$L_{t-1}=\lambda_t\,\|\epsilon-\epsilon_\theta(x_t,t)\|^2+C_t,\qquad\lambda_t="
          r"\frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}$"),
         m.kl_mse, "kl", "KL panel", uses_image_model=True,
         blurb="The mean written through the noise makes each KL a weighted noise MSE."),
    Step("simple", "8. L_simple drops \u03bb_t",
         (r"$L_{\mathrm{simple}}=\mathbb{E}_{t,x_0,\epsilon}\,\|\epsilon-\epsilon_\theta(\sqrt{\bar\alpha_t}"
          r"\,x_0+\sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\|^2$",
          r"$L_{\mathrm{VLB}}=\sum_t\lambda_t\,\mathbb{E}\,\|\epsilon-\epsilon_\theta\|^2+C:\quad"
          r"\mathrm{the\ weights\ }\lambda_t\mathrm{\ dropped}$"),
         m.simple, "train", "Train panel", uses_image_model=True,
         blurb="Where each objective puts its weight, and what each gives on the 2-D lab."),
)
