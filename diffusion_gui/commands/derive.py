"""``diffusion-gui derive``: the numbers of the Derivation panel's steps, headless. The maths is the
panel's own (:class:`~diffusion_gui.sessions.derivation.DerivationSession`); this module picks the
steps, shows their progress on a terminal's stderr and prints their numbers as text or as one JSON
object (plain floats; a missing or non-finite number is ``null``). Timesteps: the paper's t = 1..T."""
from __future__ import annotations

import json
import math
import sys

from ..errors import InvalidParameter
from .common import _model


def _num(v):
    """``v`` as a JSON number, or None where it is missing or not finite."""
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _step_keys(spec, all_keys) -> list[str]:
    """The steps ``--steps KEY,KEY`` names, in the notes' order (all of them when None)."""
    if spec is None:
        return list(all_keys)
    keys = [k.strip() for k in str(spec).split(",") if k.strip()]
    bad = [k for k in keys if k not in all_keys]
    if not keys or bad:
        got = f", not {bad[0]!r}" if bad else ""
        raise InvalidParameter("steps", f"must be comma-separated step keys from {','.join(all_keys)}{got}")
    return [k for k in all_keys if k in keys]


def _settings(args, toy: str):
    """The session's settings from ``--seed``, ``--trajectories``, ``--lab-steps`` (each checked
    against the bounds the settings dataclass declares) and ``--toy``."""
    from dataclasses import fields

    from ..sessions.derivation import DerivationSettings
    meta = {f.name: f.metadata for f in fields(DerivationSettings)}
    kw = {n: getattr(args, n, None) for n in ("seed", "trajectories", "lab_steps")}
    for name, v in kw.items():
        lo, hi = meta[name]["lo"], meta[name]["hi"]
        if v is not None and not lo <= v <= hi:
            raise InvalidParameter(name, f"must be in {lo}..{hi}")
    return DerivationSettings(toy=toy, **{n: int(v) for n, v in kw.items() if v is not None})


def _run(sess, key: str, label: str):
    """Step ``key``'s :class:`StepResult`; a tqdm bar on stderr while it runs, if stderr is a terminal."""
    from ..sessions.derivation import StepResult
    bar = None
    if getattr(sys.stderr, "isatty", lambda: False)():
        from tqdm import tqdm
        bar = tqdm(total=100, desc=label, file=sys.stderr, leave=False, dynamic_ncols=True,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} {postfix}")
    result = None
    try:
        for item in sess.run(key):
            if isinstance(item, StepResult):
                result = item
            elif bar is not None:
                bar.n = round(100 * max(0.0, min(1.0, item.fraction)))
                bar.set_postfix_str(item.text)
    finally:
        if bar is not None:
            bar.close()
    return result


def _curve_list(c, dims: int = 1) -> list[dict]:
    return [{"K": int(k), "bound": _num(m / dims), "stderr": _num(s / dims)}
            for k, m, s in zip(c["k"], c["mean"], c["se"])]


def _estimators(tt, scale: float, unit: str) -> dict:
    a, b = tt.plain * scale, tt.rao_blackwell * scale

    def one(x):
        return {"mean": float(x.mean()), "std": float(x.std(ddof=1)), "n": len(x),
                "stderr": float(x.std(ddof=1) / math.sqrt(len(x)))}
    return {"unit": unit, "timesteps": int(tt.timesteps), "a": one(a), "b": one(b),
            "variance_ratio": _num(a.var(ddof=1) / b.var(ddof=1))}


def _summary(model, sess, results: dict, toy: str) -> dict:
    """The JSON object: the numbers of the steps that ran (``null`` for those that did not)."""
    from ..core import bound_estimators as be
    from ..sessions.derivation_bound import fixed_variance
    d = model.diffusion
    fixed = fixed_variance(d)
    var = fixed.variance
    lam = be.lambda_weights(fixed)
    raw = {k: r.raw for k, r in results.items()}
    out = {"model": model.name, "timesteps": int(d.num_timesteps), "model_variance": d.variance,
           "variance": var, "seed": sess.settings.seed, "steps": list(results), "toy": toy,
           "lambda": [float(v) for v in lam], "kl_vs_weighted_mse": None, "estimators": None,
           "iwae": None, "telescoping": None}
    if "kl_mse" in raw:
        per = {v: float(o["max_rel"]) for v, o in raw["kl_mse"]["out"].items()}
        out.update(kl_vs_weighted_mse=per.get(var), kl_vs_weighted_mse_by_variance=per,
                   lambda_vs_coef1_rel=float(raw["kl_mse"]["lambda_rel"]))
    if "estimators" in raw:
        r = raw["estimators"]
        out["estimators"] = _estimators(r["toy"], 0.5, "nats/dim")
        if r["image"] is not None:
            out["estimators"] = dict(_estimators(r["image"], r["scale"], "bits/dim"),
                                     toy=out["estimators"])
    if "iwae" in raw:
        r = raw["iwae"]
        out["iwae"] = _curve_list(r["curve2d"], 2)
        out["iwae_2d"] = {"data": toy, "unit": "nats/dim", "model": r["toy_model"]}
        out["iwae_1d"] = {"unit": "nats", "exact_nll": _num(r["exact"]), "vlb": _num(r["vlb"]),
                          "curve": _curve_list(r["curve"])}
    if "telescoping" in raw:
        r = raw["telescoping"]
        out["telescoping"] = float(max(r["residual"], r["bayes_residual"],
                                       abs(r["product_of_ratios"] - r["cancelled"])))
        out["telescoping_log_ratio"] = {"direct": r["direct"], "rewritten": r["rewritten"]}
    out.update({"chaining_z_max": _num(raw["chaining"]["z_max"])} if "chaining" in raw else {},
               **({"prior_l_t": _num(raw["prior"]["now"])} if "prior" in raw else {}))
    if "variance" in raw:
        r = raw["variance"]
        out["variance_bound"] = {"image_bpd": {v: _num(x["total"]) for v, x in (r.get("image") or {}).items()},
                                 "toy_exact": {v: _num(x["total"]) for v, x in r["toy"].items()},
                                 "toy_mlp": {o: {v: _num(x["total"]) for v, x in by.items()}
                                             for o, by in (r.get("lab") or {}).items()}}
    if "simple" in raw:
        out["simple"] = {o: {"bound": _num(v["bound"]), "energy": _num(v["energy"])}
                         for o, v in raw["simple"]["lab"].items()}
    out["numbers"] = {k: [[a, b] for a, b in r.numbers] for k, r in results.items()}
    out["verdicts"] = {k: r.verdict for k, r in results.items()}
    return out


def _print_step(step, result) -> None:
    print(step.title)
    for label, value in result.numbers:
        print(f"  {label}: {value}" if value else f"  {label}")
    print(f"  => {result.verdict}")
    print(flush=True)


def cmd_derive(args, model_spec):
    """``diffusion-gui derive``: run the chosen steps of the derivation on the model (default the
    built-in digits model) and print their numbers and verdicts, or one JSON object."""
    from ..sessions.derivation import DerivationSession
    from ..sessions.derivation_steps import STEPS
    from ..sessions.lab2d_settings import DATASETS
    keys = _step_keys(args.steps, [s.key for s in STEPS])
    toy = args.toy or "gaussians8"
    if toy not in DATASETS:
        raise InvalidParameter("toy", f"must be one of {', '.join(DATASETS)}, not {toy!r}")
    sess = DerivationSession(_settings(args, toy))
    model = _model(model_spec)
    sess.set_model(model)
    if not args.json:
        print(f"model {model.name}: T = {model.diffusion.num_timesteps}, {model.diffusion.variance}, "
              f"seed {sess.settings.seed}\n", flush=True)
    results = {}
    for n, key in enumerate(keys, 1):
        results[key] = _run(sess, key, f"[{n}/{len(keys)}] {key}")
        if not args.json:
            _print_step(sess.step(key), results[key])
    if args.json:
        print(json.dumps(_summary(model, sess, results, toy), indent=2))
    return 0
