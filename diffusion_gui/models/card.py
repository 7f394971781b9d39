"""``model_card.md`` for a trained pipeline folder: data, architecture, steps, time, quality."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path


def write_model_card(out_dir, cfg: dict, params: int, steps: int, wall_s: float, final_loss: float):
    """Write ``out_dir/model_card.md``; quality figures come from ``out_dir/quality.json`` when an
    evaluation (``benchmarks/digits_quality.py``) has written one."""
    out = Path(out_dir)
    q = {}
    if (out / "quality.json").is_file():
        q = json.loads((out / "quality.json").read_text())
    data = ("scikit-learn's bundled digits (1797 8x8 images, resized bilinearly), a fixed split of "
            "200 held out (permutation seed 0)" if cfg["data"] == "digits" else f"images from {cfg['data']}")
    cond = bool(cfg.get("conditional"))
    learned = cfg.get("variance") == "learned_range"
    objective = ("a learned variance (learned_range, 2 output channels per channel), L_hybrid = "
                 "L_simple + 0.001 L_vlb" if learned else
                 f"simple loss, {cfg.get('variance', 'fixed_small')} variance")
    lines = [
        f"# {out.name}: {'a class-conditional DDPM with classifier-free guidance' if cond else 'an unconditional DDPM'}"
        f"{' with a learned variance' if learned else ''}",
        "",
        "Trained with `diffusion-gui train` (epsilon prediction, %s, linear schedule "
        "1e-4..0.02, T = %d, AdamW, EMA %.4g)." % (objective, cfg["timesteps"], cfg["ema_decay"]),
        "",
        "| | |", "|---|---|",
        f"| data | {data} |",
        f"| resolution | {cfg['size']}x{cfg['size']}, {cfg['channels']} channel(s), pixels in [-1, 1] |",
        f"| augmentation | {'random shifts of up to 1 px' if cfg['augment'] else 'none'} |",
        f"| architecture | diffusers UNet2DModel, preset `{cfg['preset']}`, {params:,} parameters |",
        f"| optimiser | AdamW lr {cfg['lr']:g}, warm-up {cfg['warmup']} steps, batch {cfg['batch_size']} |",
        *([f"| conditioning | the 10 digit labels plus a null label (\"no class\", index 10); during "
             f"training each label was replaced by the null one with probability "
             f"{cfg.get('label_dropout', 0):g} (Ho & Salimans 2022), so one network predicts "
             f"eps(x_t, t, y) and eps(x_t, t) |"] if cond else []),
        *([f"| initialised from | the weights of `{cfg['init_from']}` ("
           + ("the variance outputs start at zero: sigma_t^2 the geometric mean of beta~_t and beta_t"
              if learned else "the class embedding starts at zero" if cond else "all of them") + ") |"]
          if cfg.get("init_from") else []),
        f"| steps | {steps:,} |",
        f"| wall time | {wall_s / 60:.1f} min on the training machine's CPU |",
        f"| final training loss | {final_loss:.4f} ({'L_hybrid' if learned else 'eps MSE'}, one batch) |",
    ]
    if q:
        lines += ["", "## Quality", "", q.get("method", ""), "", "| measure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in q.get("figures", {}).items()]
    lines += ["", "## Licence", "", "Weights: MIT, like the code. Data: scikit-learn's digits "
              "(UCI optical recognition of handwritten digits, CC BY 4.0)." if cfg["data"] == "digits" else ""]
    (out / "model_card.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_card(cfg, last) -> None:
    """``model_card.md`` in ``cfg.out_dir`` (a :class:`~diffusion_gui.models.train.TrainConfig`)
    for the state at ``last`` (a :class:`~diffusion_gui.models.train.TrainMetrics`)."""
    from .train import unet_kwargs
    from .unet import build_unet, count_parameters
    params = count_parameters(build_unet(cfg.preset, cfg.size, cfg.channels, **unet_kwargs(cfg)))
    write_model_card(cfg.out_dir, asdict(cfg), params, last.step, last.elapsed_s, last.loss)
