"""The GPU check (#18): what the explorer does with an accelerator, on a random-weight model of
google/ddpm-cifar10-32's architecture (tests/real_architectures.py). Figures are printed, never
asserted; without a GPU it says so and checks only what the CPU can (detection, the refusal of
an absent device), so the CPU paths never depend on it.

1. Devices: what ``available_devices()`` finds and what ``auto`` resolves to; ``--device cuda``
   on a machine without one is refused in one line.
2. Same seed, same images: DDIM-10 (and DDPM over 10 respaced steps) of batch 4 on the CPU and
   on the GPU, float32: the largest difference of x_0 (the noise is drawn on the CPU generator
   for both, so only float rounding differs).
3. Throughput with the live view: DDIM-``--steps`` of batch ``--batch`` as a bare loop (the
   sampler exhausted, nothing shown) and as a Generate in a visible Reverse panel, on the GPU,
   alternated ``--repeat`` times: ratio bare / panel (target >= 0.95).
4. Half precision: the same bare loop in float16 and bfloat16 vs float32 (speed-up, and the
   largest difference of x_0).

    python benchmarks/gpu_check.py [--device cuda] [--steps 100] [--batch 64] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def sample(model, device, dtype="float32", sampler="ddim", steps=10, batch=4, seed=0):
    """x_0 on the CPU and the seconds of the run (the device synchronised at the end)."""
    from diffusion_gui.core.devices import resolve_device, synchronize
    from diffusion_gui.sessions.sampling import make_sampler
    gen, _ = make_sampler(model, sampler=sampler, steps=steps, batch=batch, seed=seed,
                          device=device, dtype=dtype)
    t0 = time.perf_counter()
    last = None
    for last in gen:
        pass
    synchronize(resolve_device(device))
    return last.x_t.float().cpu(), time.perf_counter() - t0


def check_devices():
    from diffusion_gui.core.devices import available_devices, resolve_device
    from diffusion_gui.errors import InvalidParameter
    found = available_devices()
    print(f"1. devices here: {', '.join(found)}; auto -> {resolve_device('auto')}")
    for name in ("cuda", "mps"):
        if not any(d.startswith(name) for d in found):
            try:
                resolve_device(name)
            except InvalidParameter as e:
                print(f"   --device {name}: refused: {e}")
    return [d for d in found if d != "cpu"]


def same_seed(model, device):
    import torch
    for sampler in ("ddim", "ddpm"):
        a, _ = sample(model, "cpu", sampler=sampler)
        b, _ = sample(model, device, sampler=sampler)
        print(f"2. {sampler}-10, batch 4, seed 0: max |x_0(cpu) - x_0({device})| = "
              f"{float((a - b).abs().max()):.2e} (x_0 in [-1, 1]); finite: {bool(torch.isfinite(b).all())}")


def throughput(model, device, args, tmp):
    from big_model import panel_for, run_until, wait
    ctx, win, panel = panel_for(model, tmp)
    ctx.set_device(name=device)
    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    panel.steps.setValue(args.steps)
    panel.batch.setValue(args.batch)
    sample(model, device, steps=3, batch=args.batch)                 # warm the device up
    ratios = []
    for _ in range(args.repeat):
        _, bare = sample(model, device, steps=args.steps, batch=args.batch)
        gui, how = run_until(panel, panel.generate)
        ratios.append(bare / gui)
        print(f"3. DDIM-{args.steps}, batch {args.batch} on {device}: bare {bare:.2f} s, panel "
              f"{gui:.2f} s ({how}): ratio {bare / gui:.3f}")
    print(f"   median ratio bare / panel: {statistics.median(ratios):.3f} (target >= 0.95)")
    wait(lambda: not panel.is_active())
    panel.shutdown()
    ctx.shutdown()
    win.close()


def half_precision(model, device, args):
    ref, t32 = sample(model, device, steps=args.steps, batch=args.batch)
    for dtype in ("float16", "bfloat16"):
        try:
            x, t = sample(model, device, dtype=dtype, steps=args.steps, batch=args.batch)
        except Exception as e:  # noqa: BLE001 - a device without the type: say so
            print(f"4. {dtype}: {type(e).__name__}: {e}")
            continue
        print(f"4. {dtype} vs float32 on {device}: {t32 / t:.2f}x the speed "
              f"({t:.2f} s vs {t32:.2f} s); max |x_0 difference| {float((x - ref).abs().max()):.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="the accelerator to check (default: the first found)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("DIFFUSION_GUI_SETTINGS", "benchmark")
    accelerators = check_devices()
    device = args.device or (accelerators[0] if accelerators else None)
    if device is None:
        print("no GPU on this machine: checks 2-4 need one (the CPU paths do not depend on them)")
        return 0
    from PySide6.QtWidgets import QApplication
    from real_architectures import make_real_checkpoint

    from diffusion_gui.models.loader import load_model
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(str(make_real_checkpoint(Path(tmp) / "cifar10", "cifar10")))
        same_seed(model, device)
        half_precision(model, device, args)
        throughput(model, device, args, tmp)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
