"""Class-conditional checkpoints and classifier-free guidance (models/conditioning, the loader)."""
import json
import shutil

import numpy as np
import pytest
import torch

from diffusion_gui.errors import InvalidParameter, ModelLoadError
from diffusion_gui.models.conditioning import labels_for
from diffusion_gui.sessions.sampling import SamplingParams, make_sampler


@pytest.fixture()
def cond(tiny_model):
    return tiny_model(classes=3, timesteps=20)


def test_a_class_conditional_checkpoint_loads_with_its_classes(cond):
    assert cond.classes.names == ("c0", "c1", "c2") and cond.classes.null_label == 3
    assert cond.info()["classes"] == ["c0", "c1", "c2"]


def test_guidance_is_the_cfg_combination_of_one_doubled_call(cond):
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    i = torch.tensor([3, 7, 11, 15])
    unet = cond.unet

    def eps(label):
        return unet(x, i, class_labels=torch.full((4,), label)).sample

    e_c, e_u = eps(2), eps(3)
    for w in (0.0, 1.0, 2.5):
        got = cond.conditioned(2, w)(x, i)
        torch.testing.assert_close(got, e_u + w * (e_c - e_u), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cond(x, i), e_u)                  # plain call: unconditional
    y = labels_for(cond.classes, "all", 5)
    assert y.tolist() == [0, 1, 2, 0, 1]
    # a 9-image batch is a 3 x 3 grid: one class a row
    assert labels_for(cond.classes, "rows", 9).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_the_sampler_follows_the_class_and_the_guidance(cond):
    def final(**kw):
        gen, _ = make_sampler(cond, SamplingParams(sampler="ddim", steps=5, batch=3, seed=1, **kw))
        *_, last = gen
        return last.x_t

    a, b = final(class_label=0, guidance=3.0), final(class_label=1, guidance=3.0)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(final(class_label=0, guidance=3.0), a)      # seeded
    torch.testing.assert_close(final(class_label=0, guidance=0.0), final(class_label="any"))


def test_bad_choices_are_refused_with_their_names(cond, tiny_model):
    with pytest.raises(InvalidParameter, match="class_label must be in 0..2, 'rows'"):
        cond.conditioned(5)
    with pytest.raises(InvalidParameter, match="guidance must be in"):
        cond.conditioned(0, 50)
    plain = tiny_model(timesteps=20)
    with pytest.raises(InvalidParameter, match="needs a class-conditional model"):
        plain.conditioned(1)
    with pytest.raises(InvalidParameter, match="guidance needs a class-conditional model"):
        plain.conditioned("any", 2.0)


def test_someone_elses_class_model_without_a_null_label_samples_conditionally(checkpoints, tmp_path):
    from diffusion_gui.models.loader import load_model
    d = shutil.copytree(checkpoints(classes=4, null_label=False, timesteps=20), tmp_path / "theirs")
    m = load_model(str(d))
    assert m.classes.names == ("0", "1", "2", "3") and not m.classes.can_guide
    with pytest.raises(InvalidParameter, match="null label"):
        m.conditioned(1, 2.0)
    x = torch.zeros(2, 1, 16, 16)
    assert m(x, torch.tensor([1, 2])).shape == (2, 1, 16, 16)


def test_a_broken_class_file_is_a_load_error(checkpoints, tmp_path):
    from diffusion_gui.models.loader import load_model
    d = shutil.copytree(checkpoints(classes=3, timesteps=20), tmp_path / "broken")
    (d / "classes.json").write_text(json.dumps({"classes": ["a"] * 9, "null_label": 3}))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model(str(d))


def test_conditional_training_drops_labels_and_writes_its_classes(tmp_path):
    from diffusion_gui.models.loader import load_model
    from diffusion_gui.models.train import TrainConfig, train
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), preset="tiny", steps=2, batch_size=8,
                      checkpoint_every=2, conditional=True, label_dropout=0.5, threads=1)
    losses = [m.loss for m in train(cfg)]
    assert len(losses) == 2 and np.isfinite(losses).all()
    m = load_model(str(tmp_path / "run"))
    assert m.classes.names == tuple("0123456789") and m.classes.null_label == 10
    assert m.unet.config.num_class_embeds == 11
    with pytest.raises(InvalidParameter, match="labelled data"):
        next(train(TrainConfig(out_dir=str(tmp_path / "r2"), data=str(tmp_path), conditional=True)))
