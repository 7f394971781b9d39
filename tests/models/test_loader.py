"""models/loader.py: both diffusers layouts, 1 and 3 channels, 16-64 px, and every refusal.

Checkpoints are tiny random ones (tests/tiny_models.py): the built-in model may not exist yet.
"""
from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from tiny_models import EvilPickle as _Evil
from tiny_models import edit_json as _edit_json
from tiny_models import make_checkpoint, tiny_unet

from diffusion_gui.models.errors import ModelLoadError
from diffusion_gui.models.loader import clear_cache, load_model

T = 50


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="module")
def base(checkpoints):
    """A flat 16 px grey checkpoint that tests copy and then damage."""
    return checkpoints(timesteps=T)


def _copy(base, tmp_path, name="m") -> Path:
    d = tmp_path / name
    shutil.copytree(base, d)
    return d




def _one_line_error(spec) -> str:
    with pytest.raises(ModelLoadError) as e:
        load_model(str(spec))
    msg = str(e.value)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------------------------ what loads
@pytest.mark.parametrize("layout, channels, size", [
    ("flat", 1, 16), ("pipeline", 1, 16), ("flat", 3, 32), ("pipeline", 3, 32),
    ("flat", 1, 64), ("pipeline", 3, 64),
])
def test_loads_both_layouts(tmp_path, layout, channels, size):
    folder = make_checkpoint(tmp_path / "m", size=size, channels=channels, timesteps=T, layout=layout)
    if layout == "pipeline":
        assert (folder / "model_index.json").is_file() and (folder / "unet").is_dir()
    m = load_model(str(folder))
    assert (m.sample_size, m.in_channels, m.num_timesteps) == (size, channels, T)
    info = m.info()
    assert info["resolution"] == size and info["channels"] == channels and info["timesteps"] == T
    assert info["schedule"] == "linear" and info["variance"] == "fixed_small"
    assert info["prediction"] == "epsilon" and info["clip_sample"] is True
    assert info["parameters"] == sum(p.numel() for p in tiny_unet(size, channels).parameters())
    # the loaded network is the saved one
    ref = tiny_unet(size, channels).eval()
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(0))
    i = torch.tensor([0, T - 1])
    with torch.no_grad():
        assert torch.allclose(m(x, i), ref(x, i).sample, atol=1e-6)
    assert not any(p.requires_grad for p in m.unet.parameters())


def test_bin_weights_load_through_weights_only(tmp_path):
    folder = make_checkpoint(tmp_path / "m", timesteps=T, safe=False)
    assert (folder / "diffusion_pytorch_model.bin").is_file()
    assert not (folder / "diffusion_pytorch_model.safetensors").exists()
    assert load_model(str(folder)).in_channels == 1


def test_loading_is_cached_until_a_file_changes(base, tmp_path):
    d = _copy(base, tmp_path)
    a, b = load_model(str(d)), load_model(str(d))
    assert a is b
    sched = d / "scheduler_config.json"
    _edit_json(sched, num_train_timesteps=20)
    st = os.stat(sched)
    os.utime(sched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    c = load_model(str(d))
    assert c is not a and c.num_timesteps == 20


def test_the_cache_keeps_the_last_two_models_and_one_version_each(base, tmp_path):
    """The model in use and the one before stay loaded; a third evicts the least recently used;
    a rewritten checkpoint replaces its older version (a cache of every model ever loaded kept
    them all for good)."""
    from diffusion_gui.models import loader
    a, b, c = (_copy(base, tmp_path, n) for n in "abc")
    ma, mb = load_model(str(a)), load_model(str(b))
    assert load_model(str(a)) is ma                      # a is now the most recent
    mc = load_model(str(c))
    assert len(loader._cache) == loader.CACHE_MODELS == 2
    assert load_model(str(a)) is ma and load_model(str(b)) is not mb    # b went
    w = c / "config.json"
    st = os.stat(w)
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_model(str(c)) is not mc
    assert [k[0] for k in loader._cache].count(str(c.resolve())) == 1


def test_other_scheduler_settings_are_honoured(tmp_path):
    d = make_checkpoint(tmp_path / "m", timesteps=T, beta_schedule="squaredcos_cap_v2",
                        variance_type="fixed_large", clip_sample=False, prediction_type="v_prediction")
    info = load_model(str(d)).info()
    assert info["schedule"] == "squaredcos_cap_v2" and info["variance"] == "fixed_large"
    assert info["clip_sample"] is False and info["prediction"] == "v_prediction"


def test_missing_scheduler_config_uses_ddpm_defaults_with_a_warning(base, tmp_path):
    d = _copy(base, tmp_path)
    (d / "scheduler_config.json").unlink()
    with pytest.warns(UserWarning, match="no scheduler_config.json; using DDPM defaults"):
        m = load_model(str(d))
    assert m.num_timesteps == 1000 and m.diffusion.variance == "fixed_small"
    assert m.warnings and "DDPM defaults" in m.warnings[0]
    assert abs(float(m.diffusion.schedule.betas[0]) - 1e-4) < 1e-12
    assert abs(float(m.diffusion.schedule.betas[-1]) - 0.02) < 1e-12


# ------------------------------------------------------------------------------ refusals
def test_a_pickle_with_code_creates_nothing(base, tmp_path):
    d = _copy(base, tmp_path)
    sd = load_model(str(base)).unet.state_dict()
    (d / "diffusion_pytorch_model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    sd = dict(sd)
    sd["payload"] = _Evil(str(marker))
    with open(d / "diffusion_pytorch_model.bin", "wb") as fh:
        torch.save(sd, fh)
    assert not marker.exists()
    # sanity: plain pickle.load of the same file *would* create it (so the test means something)
    # -- checked on a copy inside a throwaway folder, then removed
    probe = tmp_path / "probe"
    probe.mkdir()
    evil_probe = probe / "PWNED-probe"
    with open(probe / "x.pkl", "wb") as fh:
        pickle.dump(_Evil(str(evil_probe)), fh)
    with open(probe / "x.pkl", "rb") as fh:
        pickle.load(fh).close()
    assert evil_probe.exists()
    msg = _one_line_error(d)
    assert "refused" in msg and "nothing was executed" in msg
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header_only"])
def test_corrupt_safetensors(base, tmp_path, damage):
    d = _copy(base, tmp_path)
    w = d / "diffusion_pytorch_model.safetensors"
    data = w.read_bytes()
    w.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b"",
                   "header_only": data[:64]}[damage])
    assert "corrupt or truncated" in _one_line_error(d)


def test_config_lying_about_channels(base, tmp_path):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", in_channels=3, out_channels=3)
    assert "weights do not match config.json" in _one_line_error(d)


@pytest.mark.parametrize("size", [0, -16, 100000, "16", None, 16.5, [16, 32], True])
def test_config_lying_about_resolution(base, tmp_path, size):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", sample_size=size)
    msg = _one_line_error(d)
    assert "sample_size" in msg


def test_resolution_not_divisible_by_the_downsampling(base, tmp_path):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", sample_size=15)
    assert "not divisible" in _one_line_error(d)


def test_latent_or_odd_channel_counts_are_refused(base, tmp_path):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", in_channels=4, out_channels=4)
    assert "1 (grey) or 3 (RGB)" in _one_line_error(d)


def test_architecture_mismatch(base, tmp_path):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", block_out_channels=[16, 32])
    assert "weights do not match config.json" in _one_line_error(d)


def test_nan_weights(base, tmp_path):
    from tiny_models import _nan_weights
    d = _copy(base, tmp_path)
    k = _nan_weights(d)
    msg = _one_line_error(d)
    assert "NaN or infinity" in msg and k in msg


def test_missing_weights(base, tmp_path):
    d = _copy(base, tmp_path)
    (d / "diffusion_pytorch_model.safetensors").unlink()
    assert "no weights" in _one_line_error(d)


def test_missing_config(base, tmp_path):
    d = _copy(base, tmp_path)
    (d / "config.json").unlink()
    assert "no config.json" in _one_line_error(d)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _one_line_error(tmp_path / "empty")


def test_broken_json(base, tmp_path):
    d = _copy(base, tmp_path)
    (d / "config.json").write_text("{not json")
    assert "unreadable JSON" in _one_line_error(d)
    d2 = _copy(base, tmp_path, "m2")
    (d2 / "scheduler_config.json").write_text("[1, 2]")
    assert "expected a JSON object" in _one_line_error(d2)


def test_not_a_unet(base, tmp_path):
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", _class_name="UNet2DConditionModel")
    assert "UNet2DConditionModel (text-conditional" in _one_line_error(d)


@pytest.mark.parametrize("change, text", [
    ({"variance_type": "learned"}, "unsupported variance_type"),
    ({"variance_type": "learned_range"}, "that needs out_channels 2"),     # the UNet outputs C
    ({"beta_schedule": "exotic"}, "unsupported beta_schedule"),
])
def test_unsupported_scheduler(base, tmp_path, change, text):
    d = _copy(base, tmp_path)
    _edit_json(d / "scheduler_config.json", **change)
    assert text in _one_line_error(d)


def test_nonexistent_folder(tmp_path):
    msg = _one_line_error(tmp_path / "no" / "such" / "model")
    assert "no such built-in model, folder or hub id" in msg


def test_a_file_is_not_a_model(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    assert "is a folder" in _one_line_error(f)


def test_unreadable_folder_as_reported_by_the_os(base, tmp_path, monkeypatch):
    """The same refusal, when the OS denies access (simulated: tests may run as root)."""
    d = _copy(base, tmp_path)
    import diffusion_gui.models.loader as loader
    real = loader.os.access
    monkeypatch.setattr(loader.os, "access", lambda p, mode: False if Path(p) == d.resolve()
                        else real(p, mode))
    assert "not readable" in _one_line_error(d)


# ------------------------------------------------------------------------------ hub ids
@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as c
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_not_in_the_cache(hub_cache):
    msg = _one_line_error("someone/not-here")
    assert "not in the local Hugging Face cache" in msg
    assert "download someone/not-here" in msg        # says how to get it


def test_hub_id_from_the_local_cache(hub_cache):
    repo = hub_cache / "models--me--tiny"
    make_checkpoint(repo / "snapshots" / "0123abc", size=32, channels=3, timesteps=T,
                    layout="pipeline")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    m = load_model("me/tiny")
    assert m.name == "me/tiny" and (m.sample_size, m.in_channels) == (32, 3)


# ------------------------------------------------------------------------------ our train output
def test_ddpm_pipeline_loads_what_our_train_command_writes(tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    from diffusion_gui.cli import main
    out = tmp_path / "trained"
    assert main(["train", "--steps", "3", "--batch", "4", "--preset", "tiny", "-o", str(out)]) == 0
    pipe = DDPMPipeline.from_pretrained(str(out))
    assert isinstance(pipe.unet, UNet2DModel) and isinstance(pipe.scheduler, DDPMScheduler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = pipe(batch_size=1, num_inference_steps=2, output_type="np",
                      generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 16, 16, 1)
    ours = load_model(str(out))
    assert ours.num_timesteps == pipe.scheduler.config.num_train_timesteps
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x, torch.tensor([10])), pipe.unet(x, torch.tensor([10])).sample,
                              atol=1e-6)


def test_a_config_describing_a_huge_network_is_refused_before_building_it(base, tmp_path,
                                                                            monkeypatch):
    """block_out_channels [4096, 4096]: 4.4 G parameters (16 GiB of float32) that diffusers would
    allocate and initialise before the weights are compared. Refused from the parameter count of
    a shapes-only (meta device) build against the size of the weights file."""
    import diffusion_gui.models.loader as loader
    d = _copy(base, tmp_path)
    _edit_json(d / "config.json", block_out_channels=[4096, 4096])
    built = []
    real = loader.build_unet_from_config

    def spy(config, where):
        built.append(torch.empty(0).device.type)     # the device new tensors go to
        return real(config, where)

    monkeypatch.setattr(loader, "build_unet_from_config", spy)
    msg = _one_line_error(d)
    assert "weights do not match config.json" in msg and "4396.1 M parameters" in msg, msg
    assert built == ["meta"]                             # never built for real


def test_a_learned_range_checkpoint_loads_and_samples(tmp_path):
    """diffusers' learned_range with out_channels = 2C: the loader accepts it, the diffusion reads
    the second half as the variance; the same UNet with a fixed scheduler is refused."""
    import torch

    from diffusion_gui.core.sampling import ddpm_sample, run
    d = make_checkpoint(tmp_path / "lr", channels=3, timesteps=20, variance_type="learned_range")
    m = load_model(str(d))
    assert m.diffusion.variance == "learned_range" and m.unet.config.out_channels == 6
    assert m.info()["variance"] == "learned_range"
    x = run(ddpm_sample(m, m.diffusion, (2, 3, 16, 16), generator=torch.Generator().manual_seed(0)))
    assert x.shape == (2, 3, 16, 16) and torch.isfinite(x).all()
    _edit_json(d / "scheduler_config.json", variance_type="fixed_small")
    assert "out_channels 6 with in_channels 3 and variance_type fixed_small" in _one_line_error(d)
    _edit_json(d / "config.json", out_channels=4)
    assert "out_channels 4" in _one_line_error(d)
