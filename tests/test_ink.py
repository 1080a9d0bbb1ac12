"""The one renderer: strokes become model inputs the way scans do, for serving and training alike."""

from __future__ import annotations

import numpy as np
import pytest

from hwotp import ink
from hwotp.preprocess import InvalidImage
from training import strokes as stroke_sets

SEVEN = [np.array([[0, 0], [10, 0], [4, 16]], dtype=np.float32), np.array([[3, 8], [9, 8]], dtype=np.float32)]


def test_strokes_render_like_a_normalised_scan():
    field, fingerprint = ink.prepare_strokes(SEVEN)
    assert field.shape == (28, 28) and field.dtype == np.float32 and 0 <= field.min() and field.max() == 1
    rows = np.flatnonzero(field.max(axis=1) > 0.1)
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # the MNIST normalisation: the ink's longer side spans 20
    assert fingerprint.shape == (1024,) and fingerprint.dtype == np.int8


def test_scale_and_offset_do_not_matter_but_the_shape_does():
    field, _ = ink.prepare_strokes(SEVEN)
    moved, _ = ink.prepare_strokes([s * 37.5 + 1000 for s in SEVEN])
    assert np.abs(field - moved).max() < 0.05
    other, _ = ink.prepare_strokes([np.array([[5, 0], [5, 16]], dtype=np.float32)])  # a "1"
    assert np.abs(field - other).mean() > 0.05


def test_no_points_is_no_ink():
    with pytest.raises(InvalidImage, match="no ink"):
        ink.render_strokes([np.zeros((0, 2))])


def test_training_and_serving_render_with_the_one_renderer():
    from gateway import admission

    assert stroke_sets.prepare_strokes is ink.prepare_strokes and admission.prepare_strokes is ink.prepare_strokes
    rendered, names = stroke_sets.digit_set([stroke_sets.StrokeSample("lab/w", 7, SEVEN)])
    assert np.array_equal(rendered.images[0], ink.prepare_strokes(SEVEN)[0]) and names == ["lab/w"]


def test_stroke_sets_round_trip(tmp_path):
    path = tmp_path / "set.jsonl"
    stroke_sets.write_stroke_set([stroke_sets.StrokeSample("lab/1", 7, SEVEN)], path)
    (back,) = stroke_sets.read_stroke_set(path)
    assert (back.writer, back.digit) == ("lab/1", 7) and all(np.allclose(a, b) for a, b in zip(back.strokes, SEVEN))
    path.write_text('{"writer": "x", "digit": 12, "strokes": [[[0, 0]]]}\n')
    with pytest.raises(ValueError, match="set.jsonl:1"):
        stroke_sets.read_stroke_set(path)
