"""Frames of the 2-D lab's particle animations (export/particles)."""
import numpy as np
import pytest

from diffusion_gui.export.particles import (
    DATA_RGB,
    PARTICLE_RGB,
    PATH_RGB,
    extent_of,
    particle_frame,
    particle_frames,
)


def _count(img, rgb):
    return int(np.all(img == np.array(rgb, np.uint8), axis=-1).sum())


def test_a_frame_puts_each_point_where_it_belongs_with_y_up():
    ext = (-1.0, 1.0, -1.0, 1.0)
    img = particle_frame(np.array([[0.5, 0.5]]), extent=ext, size=101, radius=0)
    assert img.shape == (101, 101, 3) and img.dtype == np.uint8
    rows, cols = np.nonzero(np.all(img == np.array(PARTICLE_RGB, np.uint8), axis=-1))
    assert list(rows) == [25] and list(cols) == [75]          # up and right of the centre


def test_points_outside_the_view_or_not_finite_are_left_out():
    img = particle_frame(np.array([[5.0, 0.0], [np.nan, 0.0], [0.0, 0.0]]), extent=(-1, 1, -1, 1),
                         size=51, radius=0)
    assert _count(img, PARTICLE_RGB) == 1


def test_data_is_drawn_behind_and_paths_on_top():
    ext = (-2.0, 2.0, -2.0, 2.0)
    data = np.array([[-1.0, -1.0]])
    path = np.array([[1.0, -1.0], [1.0, 1.0]])
    img = particle_frame(np.array([[0.0, 0.0]]), extent=ext, size=200, data=data, paths=[path])
    assert _count(img, DATA_RGB) > 0 and _count(img, PARTICLE_RGB) > 0 and _count(img, PATH_RGB) > 20


def test_a_trajectory_gives_one_frame_a_step_in_one_view():
    rng = np.random.default_rng(0)
    traj = np.cumsum(rng.standard_normal((5, 300, 2)) * 0.1, axis=0).astype(np.float32)
    frames = list(particle_frames(traj, size=64, trace=2))
    assert len(frames) == 5 and all(f.shape == (64, 64, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    with pytest.raises(ValueError, match=r"\[S, N, 2\]"):
        list(particle_frames(traj[0]))


def test_the_view_is_square_and_holds_the_clouds():
    x0, x1, y0, y1 = extent_of(np.array([[0.0, 0.0], [4.0, 1.0]]))
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 < 0 and x1 > 4 and y0 < 0 and y1 > 1
    assert extent_of(np.full((3, 2), np.nan)) == (-3.0, 3.0, -3.0, 3.0)
