"""Take the README's screenshots of the real window (run under a display: `xvfb-run -a`).

    xvfb-run -a .venv/bin/python tools/screenshots.py [--model digits] [--out docs]

Forward (astronaut, t = 250, cosine overlay), Reverse (a 1000-step DDPM run in progress and
finished), Compare (grid, forks, inversion), Losses (16 held-out digits, every t), KL. PNGs are
reduced to 256 colours.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "screenshots")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="digits")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--derivation", default="iwae,estimators,kl_mse",
                    help="the Derivation steps to shoot (comma-separated keys, or 'all')")
    ap.add_argument("--only-derivation", action="store_true", help="skip the other panels")
    a = ap.parse_args(argv)
    from PIL import Image
    from PySide6.QtCore import QEventLoop, QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from diffusion_gui.gui.context import AppContext
    from diffusion_gui.gui.main_window import MainWindow
    from diffusion_gui.paths import assets_dir

    ini = Path(tempfile.mkdtemp()) / "shots.ini"
    ctx = AppContext(settings=QSettings(str(ini), QSettings.IniFormat))
    win = MainWindow(ctx)
    W, H = map(int, a.size.split("x"))
    win.resize(W, H)
    win.show()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    def pump(cond=lambda: True, timeout=600.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            app.processEvents(QEventLoop.AllEvents, 20)
            if cond():
                break
            time.sleep(0.01)
        for _ in range(20):
            app.processEvents()

    def shot(name):
        pump()
        path = out / f"screenshot-{name}.png"
        win.grab().save(str(path))
        Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
        print("wrote", path, f"{path.stat().st_size // 1024} KB", flush=True)

    keys = list(win.panels)
    loaded = []
    ctx.model_changed.connect(lambda: loaded.append(ctx.model is not None))
    ctx.load_model(a.model)
    pump(lambda: loaded, 120)
    win.open_image(assets_dir() / "images" / "astronaut.jpg")
    if a.only_derivation:
        derivation_shots(win, keys, a.derivation, pump, shot)
        win.close()
        return 0

    # Forward
    win.tabs.setCurrentIndex(keys.index("forward"))
    fp = win.panel("forward")
    pump(lambda: fp.is_ready(), 120)
    fp.set_t(250)
    pump(lambda: False, 8)  # let the step-by-step chain fill in
    shot("forward")

    # Reverse: a full DDPM run
    win.tabs.setCurrentIndex(keys.index("reverse"))
    rp = win.panel("reverse")
    pump()
    rp.batch.setValue(36)
    rp.seed.setValue(3)
    shown, ended = [], []
    rp.frame_shown.connect(shown.append)
    rp.run_ended.connect(lambda *r: ended.append(r))
    rp.generate()
    pump(lambda: shown and shown[-1] >= 750, 600)
    shot("reverse")
    pump(lambda: ended, 900)
    rp.slider.setValue(int(rp.slider.maximum() * 0.75))
    shot("reverse-trajectory")

    # Compare: the grid from one x_T, the fork curve, DDIM inversion and interpolation
    win.tabs.setCurrentIndex(keys.index("compare"))
    cp = win.panel("compare")
    for mode, start in (("grid", cp.grid.start_grid), ("forks", cp.forks.start_forks),
                        ("inversion", cp.inversion.start_inversion)):
        cp.set_mode(mode)
        pump()
        page = getattr(cp, mode)
        start()
        pump(lambda page=page: not page.busy(), 900)
        if mode == "inversion":
            cp.inversion.start_interp()
            pump(lambda page=page: not page.busy(), 900)
        shot(f"compare-{mode}")

    # Losses: 16 held-out digits, every t
    win.tabs.setCurrentIndex(keys.index("losses"))
    lp = win.panel("losses")
    pump()
    lp.source_combo.setCurrentIndex(lp.source_combo.findData("digits"))
    lp.stride_spin.setValue(1)
    lp.compute()
    pump(lambda: not lp.is_running(), 900)
    ctx.set_forward_t(120)
    shot("loss")

    # KL
    win.tabs.setCurrentIndex(keys.index("kl"))
    shot("kl")

    # 2-D lab: a dragged-able mixture of 500 points, the MLP trained 45 s, DDPM vs DDIM
    if "lab2d" in keys:
        win.tabs.setCurrentIndex(keys.index("lab2d"))
        lab = win.panel("lab2d")
        pump(lab.is_ready, 120)

        def select(combo, key):
            combo.setCurrentIndex(combo.findData(key))

        def lab_sample():
            lab.sample_btn.click()
            pump(lambda: lab.run is not None and lab.run.complete and not lab.is_sampling(), 600)

        def lab_shot(name):
            pump(lambda: not lab._overlay_job.is_running() and not lab.overlay_timer.isActive(), 60)
            shot(name)

        def launch(key, xy):
            n = len(lab._traces)
            lab.launch_particle(key, xy)
            pump(lambda: len(lab._traces) > n, 60)

        select(lab.data_combo, "gmm")
        lab.n_spin.setValue(500)
        lab.steps_spin.setValue(250)
        lab.particles_spin.setValue(2000)
        lab.field_check.setChecked(True)
        lab.train_btn.click()
        pump(lambda: False, 45)
        lab.pause_btn.click()
        pump(lambda: lab._train_paused, 30)
        lab_sample()
        lab.set_t(150)
        lab_shot("lab2d-forward")                       # q_t contours, exact vs learned field
        select(lab.view_combo, "ddim")
        lab.set_t(350)
        lab_shot("lab2d-field")
        select(lab.view_combo, "both")
        lab.grid_check.setChecked(True)
        lab_sample()
        lab.set_t(1000)
        for key in ("ddpm", "ddim"):
            for xy in ((2.0, 2.0), (-2.0, 1.5)):
                launch(key, xy)
        lab.set_t(400)
        lab_shot("lab2d-paths")                         # DDPM vs DDIM paths, the warped grid
        lab.grid_check.setChecked(False)
        lab.clear_paths_btn.click()
        lab.set_t(600)
        launch("ddim", (0.3, -2.5))
        lab_shot("lab2d-traced")
        select(lab.model_combo, "empirical")
        lab.clear_paths_btn.click()
        lab_sample()
        lab.set_t(0)
        lab.compare_btn.click()
        pump(lambda: len(lab._quality.get("bound", {})) == 2, 600)
        lab_shot("lab2d-memorise")                      # samples on training points

    derivation_shots(win, keys, a.derivation, pump, shot)
    win.close()
    return 0


def derivation_shots(win, keys, steps: str, pump, shot):
    """The Derivation tab at each of ``steps`` (keys, comma-separated, or ``all``), once its
    numbers are in."""
    if "derivation" not in keys:
        return
    win.tabs.setCurrentIndex(keys.index("derivation"))
    dp = win.panel("derivation")
    wanted = dp.session.keys if steps == "all" else steps.split(",")
    for step in wanted:
        dp.show_step(step)
        pump(dp.is_ready, 600)
        shot(f"derivation-{step}")


if __name__ == "__main__":
    sys.exit(main())
