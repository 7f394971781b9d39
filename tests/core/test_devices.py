"""Device names and precisions (diffusion_gui/core/devices.py), and a network placed in another
precision (models/placement.py): the sample of a seed does not change beyond float tolerance,
the step's maths stays float32, and an unavailable device is one clear line (exit 2 in the CLI).
The CPU paths are all that this machine can check; benchmarks/gpu_check.py is the GPU's."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from diffusion_gui.core.devices import available_devices, resolve_device, resolve_dtype
from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


def test_names_resolve(no_gpu):
    assert available_devices() == ["cpu"]
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name, says", [("cuda", "cuda:0 is not available on this machine (available: cpu)"),
                                        ("cuda:3", "cuda:3 is not available"),
                                        ("mps", "mps is not available"),
                                        ("gpu", "must be auto, cpu, cuda, cuda:N or mps"),
                                        ("cuda:x", "must be auto")])
def test_unavailable_or_malformed_device_is_one_line(no_gpu, name, says):
    with pytest.raises(InvalidParameter) as e:
        resolve_device(name)
    assert e.value.name == "device" and says in str(e.value)


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr("diffusion_gui.core.devices._mps_available", lambda: True)
    assert available_devices() == ["cuda:0", "cuda:1", "mps", "cpu"]
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("mps")


def test_dtypes():
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) is torch.float32
    assert resolve_dtype("bfloat16", cpu) is torch.bfloat16
    with pytest.raises(InvalidParameter, match="dtype must be one of float32, float16, bfloat16"):
        resolve_dtype("float8", cpu)
    with pytest.raises(InvalidParameter, match="float16 is for GPUs: on the CPU it runs about 50"):
        resolve_dtype("float16", cpu)           # benchmarks/gpu_check.py measured 57x on 2 cores


def test_float32_on_the_cpu_is_the_model_itself(tiny_model):
    m = tiny_model(timesteps=20)
    assert m.on("cpu", "float32") is m and m.on("auto") is m


@pytest.mark.parametrize("dtype, tol", [("bfloat16", 0.15)])
def test_half_precision_network_same_seed_same_images(tiny_model, dtype, tol):
    """The network in half precision, the step in float32: the same seed's DDIM samples agree
    with float32's to the half type's tolerance; x_t stays float32; the original is untouched."""
    m = tiny_model(timesteps=20)
    before = next(m.unet.parameters()).dtype
    p = SamplingParams(sampler="ddim", steps=5, batch=3, seed=4, device="cpu")
    outs = {}
    for dt in ("float32", dtype):
        gen, _ = make_sampler(m, p, dtype=dt)
        last = list(gen)[-1]
        assert last.x_t.dtype is torch.float32
        outs[dt] = last.x_t.numpy()
    half = m.on("cpu", dtype)
    assert half is not m and half is m.on("cpu", dtype)          # made once, kept
    assert next(half.unet.parameters()).dtype is getattr(torch, dtype)
    assert next(m.unet.parameters()).dtype is before
    err = np.abs(outs["float32"] - outs[dtype]).max()
    assert 0 < err < tol


def test_cli_unavailable_device_exits_2_with_one_line(no_gpu, tmp_path, checkpoints):
    from diffusion_gui.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["sample", "--model", str(checkpoints(timesteps=20)), "--device", "cuda",
                   "-o", str(tmp_path / "s.png")])
    assert rc == 2
    assert err.getvalue().splitlines() == [
        "diffusion-gui: error: --device cuda:0 is not available on this machine (available: cpu)"]
    assert not (tmp_path / "s.png").exists()


def test_cli_float16_on_the_cpu_is_refused(tmp_path, checkpoints):
    from diffusion_gui.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["sample", "--model", str(checkpoints(timesteps=20)), "--device", "cpu",
                   "--dtype", "float16", "-o", str(tmp_path / "s.png")])
    assert rc == 2 and err.getvalue().splitlines() == [
        "diffusion-gui: error: --dtype float16 is for GPUs: on the CPU it runs about 50 times "
        "slower than float32 (use float32, or bfloat16)"]


def test_cli_device_cpu_unchanged(tmp_path, checkpoints):
    """``sample --device cpu`` writes the very images of ``sample`` without the flag."""
    from diffusion_gui.cli import main
    ck = str(checkpoints(timesteps=20))
    out = {}
    for name, extra in (("plain", []), ("cpu", ["--device", "cpu"])):
        with contextlib.redirect_stderr(io.StringIO()):
            assert main(["sample", "--model", ck, "--sampler", "ddim", "--steps", "4", "--batch", "2",
                         "-o", str(tmp_path / f"{name}.npz"), *extra]) == 0
        out[name] = np.load(tmp_path / f"{name}.npz")["images"]
    assert np.array_equal(out["plain"], out["cpu"])


@pytest.mark.parametrize("command", [["compare", "--rows", "ddim:2:0", "--batch", "1"],
                                     ["invert", "--digits", "1", "--steps", "2"],
                                     ["interpolate", "digit:0", "digit:1", "--steps", "2",
                                      "--frames", "2"]])
def test_cli_compare_invert_interpolate_take_the_device(no_gpu, tmp_path, checkpoints, command):
    """The Compare panel's commands run where --device says: an absent one is the same one line
    (exit 2, nothing written); bfloat16 on the CPU writes the output."""
    from diffusion_gui.cli import main
    ck = str(checkpoints(timesteps=20))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main([command[0], "--model", ck, *command[1:], "--device", "cuda",
                   "-o", str(tmp_path / "a.png")])
    assert rc == 2 and err.getvalue().splitlines() == [
        "diffusion-gui: error: --device cuda:0 is not available on this machine (available: cpu)"]
    assert not (tmp_path / "a.png").exists()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main([command[0], "--model", ck, *command[1:], "--device", "cpu", "--dtype",
                     "bfloat16", "-o", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 0
