"""The pen's path as the online verifier sees it (hwotp.trajectory), and paths in Box messages."""

from __future__ import annotations

import numpy as np
import pytest

from hwotp import boxes, trajectory
from hwotp.errors import InvalidInput
from hwotp.internal.v1 import box_pb2

SEVEN = [np.array([[0, 0], [10, 0], [4, 20]], dtype=np.float32)]
FOUR = [np.array([[0, 0], [0, 10], [10, 10]], dtype=np.float32), np.array([[8, 0], [8, 20]], dtype=np.float32)]


def test_features_have_the_documented_shape_and_channels():
    features = trajectory.path_features(SEVEN)
    assert features.shape == (trajectory.CHANNELS, trajectory.POINTS) and features.dtype == np.float32
    x, y, cos, sin = features[:4]
    # centred on the bounding box, the longer side spans 1
    assert np.isclose(x.max() - x.min(), 0.5, atol=0.02) and np.isclose(y.max() - y.min(), 1.0)
    # the seven starts along the top to the right, in screen coordinates (y down)
    assert cos[1] > 0.99 and abs(sin[1]) < 0.01
    # then turns down-left: y grows
    assert sin[-2] > 0.9 and cos[-2] < 0
    assert np.allclose(cos**2 + sin**2, 1, atol=1e-4)


def test_position_and_size_do_not_matter_but_direction_does():
    moved = [stroke * 3.5 + np.array([100, -40]) for stroke in SEVEN]
    assert np.allclose(trajectory.path_features(SEVEN), trajectory.path_features(moved), atol=1e-5)
    backwards = [stroke[::-1] for stroke in SEVEN]
    assert not np.allclose(trajectory.path_features(SEVEN)[2:4], trajectory.path_features(backwards)[2:4], atol=0.1)


def test_the_jump_between_strokes_is_marked_pen_up():
    pen_up = trajectory.path_features(FOUR)[6]
    assert pen_up[0] == 0 and pen_up[-1] == 0 and 0 < pen_up.sum() < trajectory.POINTS / 2
    rises = np.flatnonzero(np.diff(pen_up) != 0)
    assert len(rises) == 2  # one air segment: up once, down once
    assert trajectory.path_features([np.concatenate(FOUR)])[6].sum() == 0  # the same points as one stroke


def test_a_dot_and_pressure_are_handled():
    dot = trajectory.path_features([np.array([[5, 5, 0, 0.5]], dtype=np.float32)])
    assert np.all(np.isfinite(dot)) and np.allclose(dot[:2], 0) and np.allclose(dot[trajectory.SPEED_CHANNEL], 0)
    pressed = [np.column_stack([SEVEN[0], [0, 40, 90], [0.2, 0.5, 0.9]])]
    heavier = [np.column_stack([SEVEN[0], [0, 40, 90], [0.9, 0.9, 0.9]])]
    assert np.allclose(trajectory.path_features(pressed), trajectory.path_features(heavier))  # pressure unused
    with pytest.raises(ValueError, match="no ink"):
        trajectory.path_features([])


# one straight line: ten short steps, then ten steps three times as long
SLOW_THEN_FAST = [np.array([[x, 0] for x in [*range(0, 10), *range(10, 41, 3)]], dtype=np.float32)]


def test_speed_is_relative_to_the_digits_own_mean_speed():
    speed = trajectory.path_features(SLOW_THEN_FAST)[trajectory.SPEED_CHANNEL]
    # points sampled at a steady rate: short steps are a slow pen, long steps a fast one
    assert np.all(speed[:10] < -0.3) and np.all(speed[-10:] > 0.3)
    steady = [np.array([[x, 0] for x in range(0, 41, 2)], dtype=np.float32)]
    assert np.allclose(trajectory.path_features(steady)[trajectory.SPEED_CHANNEL], 0, atol=1e-6)
    assert np.all(np.abs(speed) <= 3.0)


def test_the_clock_wins_over_the_sampling_order_when_it_advances():
    x = SLOW_THEN_FAST[0][:, 0]
    at_even_speed = [np.column_stack([SLOW_THEN_FAST[0], x * 7.0])]  # t_ms proportional to the distance
    assert np.allclose(trajectory.path_features(at_even_speed)[trajectory.SPEED_CHANNEL], 0, atol=1e-5)
    # the clock's unit and start do not matter, only its ratios
    later_and_slower = [np.column_stack([SLOW_THEN_FAST[0], 500 + x * 21.0])]
    assert np.allclose(trajectory.path_features(later_and_slower), trajectory.path_features(at_even_speed), atol=1e-5)
    # no clock (t_ms all 0), or one that stalls while the pen moves: the order of the points
    for clock in (np.zeros_like(x), np.minimum(x, 20)):
        stalled = [np.column_stack([SLOW_THEN_FAST[0], clock])]
        assert np.allclose(trajectory.path_features(stalled), trajectory.path_features(SLOW_THEN_FAST))


def test_speed_is_zero_in_the_air_and_the_time_in_the_air_is_not_counted():
    features = trajectory.path_features(FOUR)
    assert np.all(features[trajectory.SPEED_CHANNEL][features[6] == 1] == 0)
    quick_jump = [np.column_stack([FOUR[0], [0, 10, 20]]), np.column_stack([FOUR[1], [30, 40]])]
    long_pause = [np.column_stack([FOUR[0], [0, 10, 20]]), np.column_stack([FOUR[1], [900, 910]])]
    assert np.allclose(trajectory.path_features(quick_jump), trajectory.path_features(long_pause))


def test_training_and_serving_compute_paths_with_the_one_function():
    from gateway import admission
    from training import strokes as stroke_sets

    assert admission.path_features is trajectory.path_features and stroke_sets.path_features is trajectory.path_features


def _box(path: np.ndarray | None) -> box_pb2.Box:
    return box_pb2.Box(normalized=np.zeros(784, "<f4").tobytes(),
                       path=b"" if path is None else np.ascontiguousarray(path, "<f4").tobytes())


def test_paths_travel_in_boxes_and_are_checked():
    paths = np.stack([trajectory.path_features(SEVEN), trajectory.path_features(FOUR)])
    sent = boxes.from_batch(np.zeros((2, 1, 28, 28), np.float32), np.zeros((2, 1024), np.int8), paths)
    assert np.array_equal(boxes.paths_of(sent), paths)
    # a request is judged on what every box has: one box without a path, no paths at all
    assert boxes.paths_of([_box(paths[0]), _box(None)]) is None
    with pytest.raises(InvalidInput, match="box 1: path must be"):
        boxes.paths_of([_box(paths[0]), box_pb2.Box(path=b"\0" * 12)])
    spoiled = paths[1].copy()
    spoiled[0, 3] = np.nan
    with pytest.raises(InvalidInput, match="box 1: path values must be finite"):
        boxes.paths_of([_box(paths[0]), _box(spoiled)])
