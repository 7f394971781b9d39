"""The estimate of a training step's peak memory (``models.step_memory``), on the CPU.

- the saved-tensor count takes each storage once and leaves the parameters out;
- what the real network saves at batch B is B times what it saves at batch 1 (the estimate's
  premise), so the estimate is linear in the batch;
- the figures of the tiny preset at 8 px are positive and plausible, a learned variance and
  class embeddings add to them;
- a real step of the training loop, in a fresh process, grows its peak RSS by no more than the
  estimate (benchmarks/step_memory.py compares bigger ones).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from diffusion_gui.models import step_memory as sm
from diffusion_gui.models.unet import build_unet, count_parameters


def test_saved_bytes_counts_each_storage_once_and_skips_parameters():
    lin = torch.nn.Linear(10, 20)
    x = torch.randn(3, 10, requires_grad=True)
    # addmm saves x (3x10) and the weight's transpose; relu saves its output (3x20); float32
    assert sm.saved_bytes(lambda: torch.relu(lin(x)).sum(), lin.parameters()) == (30 + 60) * 4
    assert sm.saved_bytes(lambda: torch.relu(lin(x)).sum()) == (30 + 60 + 200) * 4
    assert sm.saved_bytes(lambda: (x * x).sum()) == 30 * 4          # x saved twice, counted once


def test_saved_bytes_of_the_real_network_scale_with_the_batch():
    torch.manual_seed(0)
    unet = build_unet("tiny", 8, 1)

    def saved(b):
        x = torch.randn(b, 1, 8, 8)
        return sm.saved_bytes(lambda: unet(x, torch.zeros(b, dtype=torch.long)).sample.pow(2).mean(),
                              unet.parameters())

    one, four = saved(1), saved(4)
    assert one > 0 and 3.9 < four / one < 4.1


def test_the_estimate_is_linear_in_the_batch():
    e = [sm.step_memory_bytes("tiny", 8, 1, b) for b in (1, 2, 4, 8)]
    per_image = e[1] - e[0]
    assert per_image > 0
    assert all(abs((e[k] - e[0]) - (b - 1) * per_image) <= 2 for k, b in enumerate((1, 2, 4, 8)))


def test_tiny_at_8_px_is_positive_and_plausible():
    net = sm.network_memory("tiny", 8, 1)
    assert net.parameters == count_parameters(build_unet("tiny", 8, 1))
    assert 10_000 < net.saved_per_image < 10_000_000     # ~0.2 MB: an 8x8 image through the UNet
    est = sm.step_memory_bytes("tiny", 8, 1, 8)
    assert 5 * 4 * net.parameters < est < 500e6           # above weights+grads+moments+EMA


def test_a_learned_variance_and_class_embeddings_cost_more():
    fixed = sm.network_memory("tiny", 8, 1)
    learned = sm.network_memory("tiny", 8, 1, "learned_range")
    conditional = sm.network_memory("tiny", 8, 1, num_class_embeds=11)
    assert learned.parameters > fixed.parameters and learned.saved_per_image > fixed.saved_per_image
    assert conditional.parameters > fixed.parameters


def test_the_estimate_leaves_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sm.network_memory("small", 8, 1, "fixed_large")                # a key not measured before
    assert torch.equal(torch.rand(3), expected)


def test_step_memory_of_a_config_is_that_of_its_network():
    from diffusion_gui.models.train import TrainConfig
    cfg = TrainConfig(out_dir="", preset="tiny", size=8, channels=1, batch_size=16,
                      variance="learned_range", conditional=True)
    assert sm.step_memory_of(cfg) == sm.step_memory_bytes("tiny", 8, 1, 16, "learned_range", 11)


def test_format_bytes():
    assert sm.format_bytes(21.4e9) == "21.4 GB"
    assert sm.format_bytes(350e6) == "350 MB"
    assert sm.format_bytes(4.2e6) == "4.2 MB"
    assert sm.available_memory_bytes() > 0


CHILD = r"""
import json, re, tempfile
import numpy as np
from diffusion_gui.models import train as T
from diffusion_gui.models.hf import diffusers_class
diffusers_class("UNet2DModel")
data = np.random.default_rng(0).uniform(-1, 1, (32, 1, 16, 16)).astype(np.float32)
T.load_labelled = lambda cfg: (data, None, None)
def status(key):
    return int(re.search(key + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
open("/proc/self/clear_refs", "w").write("5")   # the peak RSS (VmHWM) starts again from here
base = status("VmRSS")
cfg = T.TrainConfig(out_dir=tempfile.mkdtemp(), data="random", size=16, preset="small",
                    batch_size=64, steps=10, checkpoint_every=100, threads=1, augment=False)
gen = T.train(cfg)
next(gen), next(gen)
gen.close()
print(json.dumps(status("VmHWM") - base))
"""


def _can_reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _can_reset_peak_rss(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.timeout(60)
def test_a_real_step_grows_the_peak_rss_by_no_more_than_the_estimate():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    grown = json.loads(r.stdout.strip().splitlines()[-1])
    est = sm.step_memory_bytes("small", 16, 1, 64)
    # two steps of small / 16 px / batch 64 (AdamW's moments exist in the second); measured
    # ~0.2 GB against an estimate of ~0.33 GB
    assert 0.3 * est < grown <= est
