"""The compare grid (sessions/compare.py): rows from one x_T, equal to the Reverse panel's runs."""
import numpy as np
import pytest

from diffusion_gui.errors import InvalidParameter
from diffusion_gui.sessions.compare import (
    CompareGrid,
    RowSpec,
    Tick,
    grid_frames,
    grid_image,
    parse_rows,
    run_row,
    without_ticks,
)
from diffusion_gui.sessions.reverse import ReverseRun, ReverseSettings


def _reverse_panel_final(model, settings: ReverseSettings) -> np.ndarray:
    """What the Reverse panel shows at the end of a run: its session driven as its worker does."""
    run = ReverseRun(model, settings.sampling_params())
    for so in run.make_gen():
        run.observe(so)
    run.flush()
    return run.final_images()


@pytest.mark.parametrize("panel, row", [
    (ReverseSettings(sampler="ddpm", seed=3, batch=4), RowSpec("ddpm")),
    (ReverseSettings(sampler="ddpm_strided", steps=7, seed=3, batch=4), RowSpec("ddpm", 7)),
    (ReverseSettings(sampler="ddim", steps=6, eta=0.0, seed=3, batch=4), RowSpec("ddim", 6, 0.0)),
    (ReverseSettings(sampler="ddim", steps=6, eta=0.7, seed=3, batch=4), RowSpec("ddim", 6, 0.7)),
])
def test_a_row_equals_the_reverse_panel_run_of_the_same_settings_and_seed(tiny_model, panel, row):
    model = tiny_model(timesteps=20)
    grid = CompareGrid([RowSpec("ddim", 4, 1.0), row], batch=4, seed=3)
    results = list(without_ticks(grid.run(model, judge=False)))
    assert np.array_equal(results[1].final, _reverse_panel_final(model, panel))


def test_every_row_starts_from_the_same_x_T_and_shares_noise_with_its_twin(tiny_model):
    model = tiny_model(timesteps=20)
    grid = CompareGrid([RowSpec("ddpm"), RowSpec("ddpm", 5), RowSpec("ddim", 5, 0.0),
                        RowSpec("ddim", 5, 0.5), RowSpec("ddim", 5, 0.5)], batch=3, seed=11)
    res = list(without_ticks(grid.run(model, judge=False)))
    assert len(res) == 5
    starts = [r.xt[0] for r in res]
    for s in starts[1:]:
        assert np.array_equal(s, starts[0])                  # the same x_T in every row
    assert np.array_equal(res[3].final, res[4].final)        # same sampler and steps: same noise
    assert not np.array_equal(res[2].final, res[3].final)    # eta changes the result
    assert res[0].ts[0] == 20 and res[0].ts[-1] == 0 and res[0].steps == 20
    assert res[1].steps == 5 and res[2].steps == 5
    assert all(r.seconds > 0 and r.quality is None for r in res)


def test_scrubbing_all_rows_to_one_t(tiny_model):
    model = tiny_model(timesteps=20)
    grid = CompareGrid([RowSpec("ddpm"), RowSpec("ddim", 4)], batch=2, seed=0)
    list(without_ticks(grid.run(model, judge=False)))
    full, ddim = grid.results
    assert ddim.ts == [16, 11, 6, 1, 0]
    at10 = grid.at(10)
    assert np.array_equal(at10[0], full.xt[full.ts.index(10)])
    assert np.array_equal(at10[1], ddim.xt[ddim.ts.index(11)])    # the last frame with t' >= 10
    assert np.array_equal(grid.at(20)[1], ddim.xt[0])             # before its first step: x_T
    assert np.array_equal(grid.at(0, "x0")[1], ddim.x0[-1])
    img = grid_image(grid, 0)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[0] > 2 * 16
    frames, caps = grid_frames(grid, 5)
    assert len(frames) == 5 and caps[0] == "t = 20" and caps[-1] == "t = 0"
    assert len({f.shape for f in frames}) == 1


def test_row_records_at_most_max_frames_and_ticks_every_step(tiny_model):
    model = tiny_model(timesteps=50)
    r = run_row(model, RowSpec("ddpm"), 2, 0, judge=False, max_frames=10)
    assert len(r.ts) <= 11 and r.ts[0] == 50 and r.ts[-1] == 0
    items = list(CompareGrid([RowSpec("ddim", 5), RowSpec("ddim", 3)], batch=1).run(model, judge=False))
    ticks = [(i.stage, i.done) for i in items if isinstance(i, Tick)]
    assert ticks == [(0, s) for s in range(6)] + [(1, s) for s in range(4)]
    assert [type(i).__name__ for i in items].count("RowResult") == 2


def test_parse_rows_and_checks():
    assert parse_rows("ddpm, ddpm:50, ddim:10:0.5") == [RowSpec("ddpm"), RowSpec("ddpm", 50),
                                                        RowSpec("ddim", 10, 0.5)]
    for bad in ("", "plms", "ddim:x", "ddim:1:2:3"):
        with pytest.raises(InvalidParameter):
            parse_rows(bad)
    with pytest.raises(InvalidParameter):
        CompareGrid(batch=0).check()
    assert RowSpec("ddpm").label(1000) == "DDPM, all 1000 steps"
    assert RowSpec("ddim", 10, 0.5).label() == "DDIM, 10 steps, η = 0.5"


def test_ddim_eta_1_rows_equal_ddpm_respaced_to_the_same_steps(tiny_model):
    """With the same x_T and step noise, DDIM eta = 1 over N strided steps is DDPM respaced to N
    (fixed_small variance): Song et al. 2021, eq. 16. The grid shows the two rows agree."""
    model = tiny_model(timesteps=20)
    assert model.diffusion.variance == "fixed_small"
    grid = CompareGrid([RowSpec("ddpm", 5), RowSpec("ddim", 5, 1.0)], batch=4, seed=9)
    a, b = list(without_ticks(grid.run(model, judge=False)))
    assert a.ts == b.ts
    for xa, xb in zip(a.xt, b.xt):
        assert np.abs(xa.astype(int) - xb.astype(int)).max() <= 1
