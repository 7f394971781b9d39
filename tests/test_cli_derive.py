"""``diffusion-gui derive`` end to end, on a tiny random checkpoint (T = 50).

--json: lambda_t equals beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) computed here from the
scheduler config (fixed_small: sigma_t^2 = beta~_t; fixed_large: beta_t), the KL equals the
weighted noise MSE, the telescoping residual is rounding, the JSON is strict (no NaN); the
estimators and the IWAE curve of the chosen 2-D data; text mode prints each step's verdict;
bad input exits 2 with one line on stderr. Timesteps are the paper's t = 1..T.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from diffusion_gui.cli import main

T = 50


def _strict(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def _betas(ckpt) -> np.ndarray:
    c = json.loads((ckpt / "scheduler_config.json").read_text())
    assert c["beta_schedule"] == "linear" and c["num_train_timesteps"] == T
    return np.linspace(c["beta_start"], c["beta_end"], T, dtype=np.float64)


def _lambda(betas, variance: str) -> np.ndarray:
    """lambda_t for t = 2..T (index 0 is t = 2), from the paper's formulas."""
    alphas = 1 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    b, a, ab = betas[1:], alphas[1:], abar[1:]
    sig2 = (1 - abar_prev[1:]) / (1 - ab) * b if variance == "fixed_small" else b
    return b ** 2 / (2 * sig2 * a * (1 - ab))


@pytest.fixture(scope="module")
def ckpt(checkpoints):
    return checkpoints(timesteps=T)


def test_json_lambda_kl_mse_and_telescoping(ckpt, capsys):
    rc = main(["derive", "--model", str(ckpt), "--json", "--steps", "telescoping,kl_mse"])
    assert rc == 0
    out = _strict(capsys.readouterr().out)
    assert out["model"] == "tiny" and out["timesteps"] == T and out["variance"] == "fixed_small"
    assert out["steps"] == ["telescoping", "kl_mse"]                   # the notes' order
    assert set(out["verdicts"]) == {"telescoping", "kl_mse"}
    assert all(isinstance(v, str) and v for v in out["verdicts"].values())
    lam = np.asarray(out["lambda"])
    assert lam.shape == (T,)
    np.testing.assert_allclose(lam[1:], _lambda(_betas(ckpt), "fixed_small"), rtol=1e-10)
    assert 0 <= out["kl_vs_weighted_mse"] < 1e-6
    assert out["kl_vs_weighted_mse"] == out["kl_vs_weighted_mse_by_variance"]["fixed_small"]
    assert 0 <= out["telescoping"] < 1e-9
    tl = out["telescoping_log_ratio"]
    assert tl["direct"] == pytest.approx(tl["rewritten"], abs=1e-9)
    assert out["estimators"] is None and out["iwae"] is None          # not run


def test_fixed_large_lambda_and_progress_on_a_terminal(checkpoints, capsys, monkeypatch):
    import diffusion_gui.commands.derive as derive

    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    monkeypatch.setattr(derive.sys, "stderr", tty)
    large = checkpoints(timesteps=T, variance_type="fixed_large")
    assert main(["derive", "--model", str(large), "--json", "--steps", "kl_mse"]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["variance"] == "fixed_large"
    np.testing.assert_allclose(np.asarray(out["lambda"])[1:], _lambda(_betas(large), "fixed_large"),
                               rtol=1e-10)
    assert out["kl_vs_weighted_mse"] < 1e-6                          # with its constant C_t
    assert "kl_mse" in tty.getvalue() and "KL and MSE" in tty.getvalue()   # the tqdm bar


def test_text_mode_prints_titles_numbers_and_verdicts(ckpt, tiny_model, capsys):
    from diffusion_gui.sessions.derivation import DerivationSession
    assert main(["derive", "--model", str(ckpt), "--steps", "prior,telescoping"]) == 0
    text = capsys.readouterr().out
    sess = DerivationSession()
    sess.set_model(tiny_model(timesteps=T))
    for key in ("telescoping", "prior"):
        r = sess.compute(key)
        assert sess.step(key).title in text
        assert f"=> {r.verdict}" in text
        label, value = next((lab, v) for lab, v in r.numbers if v)
        assert f"  {label}: {value}" in text
    assert text.index("4. Telescoping") < text.index("5. L_T")
    assert "kl_mse" not in text and "1. Chaining" not in text


def test_estimators_with_few_trajectories(ckpt, capsys):
    assert main(["derive", "--model", str(ckpt), "--json", "--steps", "estimators",
                 "--trajectories", "4", "--seed", "3"]) == 0
    est = _strict(capsys.readouterr().out)["estimators"]
    assert est["unit"] == "bits/dim" and est["timesteps"] == T
    a, b = est["a"], est["b"]
    assert a["n"] == b["n"] == 4
    assert est["variance_ratio"] == pytest.approx((a["std"] / b["std"]) ** 2, rel=1e-9)
    assert a["stderr"] == pytest.approx(a["std"] / 2, rel=1e-9)
    assert est["toy"]["unit"] == "nats/dim" and est["toy"]["a"]["n"] == 512


def test_iwae_on_the_ring_and_on_a_shape(ckpt, capsys):
    """--toy picks step 2's 2-D data: the ring's exact mixture by default (the step's own curve),
    a KDE of a shape's points otherwise; the bound falls with K either way."""
    assert main(["derive", "--model", str(ckpt), "--json", "--steps", "iwae"]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["iwae_2d"] == {"data": "gaussians8", "unit": "nats/dim", "model": "exact mixture"}
    ks = [row["K"] for row in out["iwae"]]
    assert ks == [1, 4, 16, 64, 256, 1024]
    first, last = out["iwae"][0], out["iwae"][-1]
    assert first["bound"] - last["bound"] > 5 * (first["stderr"] + last["stderr"])   # tighter with K
    one = out["iwae_1d"]
    assert one["curve"][0]["bound"] == pytest.approx(one["vlb"], abs=4 * one["curve"][0]["stderr"])
    assert main(["derive", "--model", str(ckpt), "--json", "--steps", "iwae", "--toy", "moons"]) == 0
    moons = _strict(capsys.readouterr().out)
    assert moons["iwae_2d"]["model"].startswith("KDE of 500 points") and moons["iwae"] != out["iwae"]
    assert moons["iwae"][0]["bound"] > moons["iwae"][-1]["bound"]


@pytest.mark.parametrize("args, needle", [
    (["--steps", "kl_mse,nope"], "'nope'"),
    (["--steps", ","], "--steps"),
    (["--trajectories", "1"], "--trajectories must be in 2..256"),
    (["--lab-steps", "10"], "--lab-steps must be in 100..20000"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_input_exits_2_with_one_line(ckpt, capsys, args, needle):
    rc = main(["derive", "--model", str(ckpt)] + args)
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffusion-gui: error:"), captured.err
    assert needle in lines[0]


def test_unknown_toy_data_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["derive", "--toy", "donuts"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--toy" in err[0]
