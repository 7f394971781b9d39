"""The Derivation session without Qt: every step computes, renders its equation and says what
the issue asks of it (numbers checked against the maths, not hard-coded)."""
import numpy as np
import pytest

from diffusion_gui.sessions.derivation import DerivationSession, Progress, StepResult, render_equation


@pytest.fixture(scope="module")
def session():
    s = DerivationSession()
    s.settings.lab_steps = 100
    s.settings.trajectories = 4
    return s


def _check(r: StepResult, key):
    assert isinstance(r, StepResult) and r.key == key
    assert r.numbers and all(isinstance(a, str) and isinstance(b, str) for a, b in r.numbers)
    assert r.verdict and r.plot.series
    for s in r.plot.series:
        assert len(s.x) == len(s.y) and np.isfinite(np.asarray(s.y, float)).any()


def test_steps_in_the_order_of_the_notes(session):
    assert session.keys == ["chaining", "iwae", "estimators", "telescoping", "prior", "variance",
                            "kl_mse", "simple"]
    assert all(s.link for s in session.steps)


@pytest.mark.parametrize("key", ["chaining", "telescoping", "prior", "variance", "kl_mse", "estimators"])
def test_each_step_without_an_image_model(session, key):
    items = list(session.run(key))
    assert all(isinstance(i, Progress) for i in items[:-1])
    _check(items[-1], key)
    assert session.results[key] is items[-1]


def test_what_the_issue_asks(session):
    tel = session.compute("telescoping").raw
    assert tel["residual"] < 1e-9 and abs(tel["product_of_ratios"] - tel["cancelled"]) < 1e-12
    kl = session.compute("kl_mse").raw
    assert kl["out"]["fixed_small"]["max_rel"] < 1e-6 and kl["lambda_rel"] < 1e-9
    assert kl["no_constant_rel"] > 1e-3            # fixed_large is a constant apart
    est = session.compute("estimators").raw["toy"]
    a, b = est.plain, est.rao_blackwell
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) < 4 * se
    assert np.median(est.plain_step_std[1:] / est.rb_step_std[1:]) > 10     # one term: >= 10x
    iw = session.compute("iwae").raw
    assert abs(iw["k1_vs_vlb_se"]) < 3.5 and iw["rise_se"] < 2.5
    assert iw["curve"]["mean"][-1] - iw["exact"] < 4 * iw["curve"]["se"][-1] + 0.02
    assert iw["curve"]["mean"][0] > iw["exact"]


def test_simple_step_trains_both_objectives(session):
    r = session.compute("simple")
    _check(r, "simple")
    assert set(r.raw["lab"]) == {"simple", "vlb"}
    b, s = r.raw["shares"]
    assert np.isclose(b.sum(), 1) and np.allclose(s, 0.1)


def test_image_model_steps(tiny_model):
    s = DerivationSession()
    s.settings.trajectories = 3
    s.set_model(tiny_model(timesteps=20))
    for key in ("estimators", "prior", "variance", "kl_mse"):
        r = s.compute(key)
        _check(r, key)
    assert "bits/dim" in s.results["estimators"].plot.y_label
    assert s.results["kl_mse"].raw["out"]["fixed_small"]["max_rel"] < 1e-6
    s.set_model(None)                     # a new model drops what used the old one
    assert "estimators" not in s.results


def test_equations_render(session):
    for step in session.steps:
        img = session.equation(step.key)
        assert img.ndim == 3 and img.shape[2] == 4 and img.shape[1] > 200
        assert (img[..., :3] < 128).any()          # ink on the page
    two = render_equation([r"$a$", r"$\frac{b}{c}$"])
    assert two.shape[0] > render_equation([r"$a$"]).shape[0]


def test_step_6_trains_a_learned_variance_on_the_lab_and_it_gives_the_lower_bound():
    """Improved DDPM's claim on the 2-D ring: the L_hybrid MLP with its learned variance has a
    lower bound than the L_simple MLP with either fixed variance (same steps, seed and data)."""
    s = DerivationSession()
    s.settings.lab_steps = 1500
    r = s.compute("variance")
    _check(r, "variance")
    lab = r.raw["lab"]
    assert set(lab["simple"]) == {"fixed_small", "fixed_large"}
    assert set(lab["hybrid"]) == {"fixed_small", "fixed_large", "learned_range"}
    learned = lab["hybrid"]["learned_range"]["total"]
    assert learned < min(b["total"] for b in lab["simple"].values())
    assert learned < min(lab["hybrid"][v]["total"] for v in ("fixed_small", "fixed_large"))
    assert any("learned_range" in label for label, _ in r.numbers)
    assert {s.name for s in r.plot.series} == {"fixed_small", "fixed_large", "learned_range"}


def test_step_6_on_a_learned_variance_image_model(checkpoints):
    from diffusion_gui.models.loader import load_model
    s = DerivationSession()
    s.settings.lab_steps = 100
    s.set_model(load_model(str(checkpoints(timesteps=20, variance_type="learned_range"))))
    r = s.compute("variance")
    assert set(r.raw["image"]) == {"fixed_small", "fixed_large", "learned_range"}
    assert all(np.isfinite(v["total"]) for v in r.raw["image"].values())
    assert "learned_range (its own): bound, L\u2080" in dict(r.numbers)
    for key in ("estimators", "prior", "kl_mse", "simple"):     # every image step takes it
        _check(s.compute(key), key)
