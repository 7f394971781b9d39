"""The training-step memory estimate (``models.step_memory``) against real steps.

For each (preset, size, channels, batch, variance) a fresh subprocess takes three real steps of
:func:`diffusion_gui.models.train.train` (the GUI's thread count, no sample grids; the data set
replaced by 64 random images so that loading it is not what is measured) and reports the growth
of its peak RSS over its RSS just before the run: the kernel's peak (``VmHWM``) is reset there
(``/proc/self/clear_refs``, Linux), since ``ru_maxrss`` would still hold the peak of importing
torch and diffusers, above a small step's. Torch, diffusers and the loss are imported and one
tiny step taken before that. The parent prints the estimate, the measured growth, their ratio,
and how long the estimate took (cold: the network built and run at batch 1).

    .venv/bin/python benchmarks/step_memory.py            # the default combos (~5 minutes)
    .venv/bin/python benchmarks/step_memory.py small 32 3 64 fixed_small [steps]
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

COMBOS = [
    ("tiny", 8, 1, 8, "fixed_small"),
    ("small", 16, 1, 128, "fixed_small"),      # the panel's defaults
    ("small", 32, 3, 64, "fixed_small"),
    ("small", 32, 3, 64, "learned_range"),
    ("medium", 32, 1, 64, "fixed_small"),
    ("medium", 64, 3, 16, "fixed_small"),
    ("medium", 64, 1, 32, "fixed_small"),
    ("small", 64, 3, 96, "fixed_small"),
]

CHILD = r"""
import json, re, sys, tempfile
import numpy as np
preset, size, channels, batch, variance, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
from diffusion_gui.models import train as T
from diffusion_gui.models.hf import diffusers_class
from diffusion_gui.core import vlb  # noqa: F401  (imported before the baseline)
diffusers_class("UNet2DModel")
data = np.random.default_rng(0).uniform(-1, 1, (64, channels, size, size)).astype(np.float32)
T.load_labelled = lambda cfg: (data, np.zeros(64, np.int64), None)
def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
def run(preset, size, batch, steps):
    out = tempfile.mkdtemp()
    cfg = T.TrainConfig(out_dir=out, data="random", size=size, channels=channels, preset=preset,
                        steps=100, batch_size=batch, checkpoint_every=10_000, sample_every=0,
                        threads=T.spare_core_threads(), variance=variance, augment=False)
    gen = T.train(cfg)
    peaks = []
    for _ in range(steps):
        next(gen)
        peaks.append(status("VmHWM"))
    gen.close()
    return peaks
run("tiny", 8, 2, 1)                       # warm-up: lazy initialisation of torch's kernels
open("/proc/self/clear_refs", "w").write("5")   # the peak RSS starts again from the RSS now
base = status("VmRSS")
peaks = run(preset, size, batch, steps)
print(json.dumps({"growth": [p - base for p in peaks]}))
"""
STEPS = 3


def measure(combo, steps: int = STEPS) -> dict:
    """Peak RSS growth (bytes) of a real run of ``combo`` after each of its steps, and wall s."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, *map(str, combo), str(steps)], capture_output=True,
                       text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.perf_counter() - t
    return out


def estimate(combo) -> tuple[int, float]:
    """``(estimated bytes, seconds the cold estimate took)``."""
    from diffusion_gui.models.step_memory import step_memory_bytes
    preset, size, channels, batch, variance = combo
    t = time.perf_counter()
    est = step_memory_bytes(preset, size, channels, batch, variance)
    return est, time.perf_counter() - t


def main(combos, steps: int = STEPS) -> list[dict]:
    from diffusion_gui.models.step_memory import network_memory
    network_memory("tiny", 8, 1)             # imports diffusers once, outside the timings
    print(f"{'preset':<7}{'px':>4}{'ch':>3}{'batch':>6} {'variance':<14}{'estimate':>10}"
          f"{'measured':>10}{'ratio':>7}{'est. s':>8}{'run s':>7}  growth after each step (MB)")
    rows = []
    for combo in combos:
        est, est_s = estimate(combo)
        m = measure(combo, steps)
        grown = max(m["growth"])
        row = dict(combo=combo, estimate=est, measured=grown, ratio=est / grown, estimate_s=est_s,
                   run_s=m["wall_s"], growth=m["growth"])
        rows.append(row)
        preset, size, channels, batch, variance = combo
        print(f"{preset:<7}{size:>4}{channels:>3}{batch:>6} {variance:<14}{est / 1e6:>8.0f}MB"
              f"{grown / 1e6:>8.0f}MB{est / grown:>7.2f}{est_s:>8.2f}{m['wall_s']:>7.1f}  "
              + "/".join(f"{g / 1e6:.0f}" for g in m["growth"]), flush=True)
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    if args:
        main([(args[0], int(args[1]), int(args[2]), int(args[3]), args[4] if len(args) > 4 else "fixed_small")],
             int(args[5]) if len(args) > 5 else STEPS)
    else:
        main(COMBOS)
