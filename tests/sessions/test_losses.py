"""The loss session (diffusion_gui.sessions.losses), without Qt, on a toy eps model.

What the loss panel and ``diffusion-gui vlb`` share: the images scored (``vlb_images``), the
generator that scores them (the same numbers as ``compute_vlb``), its plain-numpy payloads, the
share of the bound per tenth of t, the CSV table, and the settings' defaults and bounds.
Timesteps are the paper's t (1..T); arrays are indexed i = t - 1.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_gui.core import GaussianDiffusion, NoiseSchedule
from diffusion_gui.core.vlb import compute_vlb
from diffusion_gui.errors import InvalidParameter, UserError
from diffusion_gui.sessions.losses import (
    N_BUCKETS,
    T_BATCH,
    LossSettings,
    bucket_shares,
    image_to_x0,
    kl_sum,
    loss_generator,
    loss_payload,
    result_csv,
    run_label,
    vlb_images,
)
from diffusion_gui.sessions.settings import from_raw

T = 20


class ToyModel:
    """A LoadedModel look-alike: ``model(x, i)`` predicts eps deterministically."""

    sample_size, in_channels, clip_sample, name = 16, 1, True, "toy"

    def __init__(self, channels=1):
        self.in_channels = channels
        self.diffusion = GaussianDiffusion(NoiseSchedule.from_name("linear", timesteps=T))
        self.num_timesteps = T

    def __call__(self, x, i):
        return 0.7 * torch.tanh(x) + 0.001 * i.to(x.dtype).reshape(-1, 1, 1, 1)


def _run(gen):
    items = list(gen)
    return items, loss_payload(items[-1])


# ---------------------------------------------------------------- the images scored
def test_vlb_images_digits_are_quantised_at_the_models_size():
    x = vlb_images(ToyModel(), None, 3)
    assert x.shape == (3, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose((x.numpy() + 1) * 127.5, np.round((x.numpy() + 1) * 127.5), atol=1e-4)
    assert vlb_images(ToyModel(channels=3), None, 2).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("n", [0, 201])
def test_vlb_images_refuses_a_bad_count_in_parameter_names(n):
    with pytest.raises(InvalidParameter) as e:
        vlb_images(ToyModel(), None, n)
    assert e.value.name == "digits" and str(e.value) == "digits must be in 1..200"


def test_vlb_images_reads_an_image_file(tmp_path):
    from PIL import Image
    p = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(p)
    assert vlb_images(ToyModel(), p, None).shape == (1, 1, 16, 16)


def test_image_to_x0_resizes_and_converts():
    img = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    x = image_to_x0(img, 16, 1)
    assert x.shape == (1, 1, 16, 16) and x.dtype == torch.float32
    assert image_to_x0(img[:, :, :1], 8, 3).shape == (1, 3, 8, 8)


# ---------------------------------------------------------------- the computation
def test_digits_bound_equals_compute_vlb():
    model = ToyModel()
    items, last = _run(loss_generator(model, "digits", n_digits=2, stride=5, seed=3))
    assert all(it[0] == "bound" for it in items)
    ref = compute_vlb(model, model.diffusion, vlb_images(model, None, 2).float(), stride=5,
                      t_batch=T_BATCH, generator=torch.Generator().manual_seed(3))
    r = last["result"]
    assert last["stage"] == "bound" and last["done"] == last["total"] and last["num_images"] == 2
    np.testing.assert_array_equal(r.t, ref.t)
    np.testing.assert_allclose(r.vb_bpd, ref.vb_bpd, rtol=1e-12)
    assert r.total_bpd == pytest.approx(ref.total_bpd, rel=1e-12)
    assert last["thumb"].dtype == np.uint8 and last["thumb"].shape == (16, 33, 1)


def test_partial_payloads_grow_and_carry_no_tensor():
    model = ToyModel()
    pays = [loss_payload(it) for it in loss_generator(model, "digits", n_digits=T_BATCH, stride=1)]
    assert [p["done"] for p in pays] == list(range(1, T + 1))   # one timestep per UNet call
    assert all(p["result"] is None for p in pays[:-1]) and pays[-1]["result"] is not None
    for p in pays:
        assert not any(isinstance(v, torch.Tensor) for v in p.values())
        assert len(p["t"]) == p["done"]


def test_sample_source_draws_then_scores():
    items, last = _run(loss_generator(ToyModel(), "sample", stride=10, seed=1))
    stages = [it[0] for it in items]
    assert stages[:T + 1] == ["sample"] * (T + 1) and set(stages[T + 1:]) == {"bound"}
    first = loss_payload(items[0])
    assert first["stage"] == "sample" and first["total"] == T and first["result"] is None
    assert last["result"].num_images == 1


def test_image_source_and_bad_sources():
    img = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    _, last = _run(loss_generator(ToyModel(), "image", image=img, stride=10))
    assert last["result"].num_images == 1
    with pytest.raises(UserError, match="open an image"):
        next(loss_generator(ToyModel(), "image"))
    with pytest.raises(InvalidParameter, match="source must be one of"):
        next(loss_generator(ToyModel(), "photo"))


# ---------------------------------------------------------------- reading a result
def test_bucket_shares_add_up_and_put_the_prior_last():
    model = ToyModel()
    _, last = _run(loss_generator(model, "digits", n_digits=1, stride=1))
    r = last["result"]
    edges, pct = bucket_shares(r)
    assert len(edges) == N_BUCKETS + 1 and edges[0] == 0 and edges[-1] == T
    assert pct.sum() == pytest.approx(100.0)
    bits_last = r.prior_bpd + r.vb_bpd[-2:].sum()            # t = 19, 20 and L_T
    assert pct[-1] == pytest.approx(100 * bits_last / r.total_bpd)
    assert r.prior_bpd + r.decoder_bpd + kl_sum(r) == pytest.approx(r.total_bpd)


def test_result_csv_and_run_label():
    _, last = _run(loss_generator(ToyModel(), "digits", n_digits=1, stride=5))
    r = last["result"]
    lines = result_csv(r).splitlines()
    assert lines[0] == "t,vb_bpd,eps_mse,x0_mse,weight" and len(lines) == len(r.t) + 1
    assert [int(v.split(",")[0]) for v in lines[1:]] == list(r.t)
    assert run_label("digits", 1, 0) == "1 held-out digit"
    assert run_label("digits", 7, 0) == "7 held-out digits"
    assert run_label("sample", 1, 4) == "a DDPM sample (seed 4)" and run_label("image", 1, 0) == "image"


def test_settings_defaults_and_bad_values():
    assert LossSettings() == LossSettings(source="digits", digits=16, seed=0, stride=10, log_y=True)
    bad = from_raw(LossSettings, {"digits": "many", "stride": "-3", "seed": "x", "log_y": "maybe",
                                  "source": "42"})
    assert (bad.source, bad.digits, bad.stride, bad.seed, bad.log_y) == ("digits", 16, 1, 0, False)
