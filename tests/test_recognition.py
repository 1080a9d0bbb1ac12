"""Reading a box from its picture and its pen path (hwotp.recognition): pure arithmetic."""

from __future__ import annotations

import numpy as np

from hwotp import recognition


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


IMAGE = np.log(np.array([[0.02, 0.50, 0.02, 0.02, 0.02, 0.02, 0.02, 0.34, 0.02, 0.02]]))  # a 1, or a 7
PATH = np.log(np.array([[0.01, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01, 0.87, 0.01, 0.01]]))  # drawn as a 7


def test_without_a_path_a_box_is_read_from_its_picture():
    digits, confidences = recognition.read(recognition.fused(IMAGE, None, 1.0))
    assert digits.tolist() == [1]
    np.testing.assert_allclose(confidences, [0.50], rtol=1e-6)


def test_a_clear_path_overturns_an_unsure_picture():
    assert recognition.read(recognition.fused(IMAGE, PATH, 1.0))[0].tolist() == [7]
    assert recognition.read(recognition.fused(IMAGE, PATH, 0.0))[0].tolist() == [1]  # weight 0: the picture


def test_fused_logits_are_the_weighted_sum_of_log_probabilities():
    rng = np.random.default_rng(0)
    image, path = rng.normal(size=(5, 10)) * 3, rng.normal(size=(5, 10)) * 3
    expected = _softmax(np.log(_softmax(image)) + 0.5 * np.log(_softmax(path)))
    np.testing.assert_allclose(_softmax(recognition.fused(image, path, 0.5)), expected, rtol=1e-6)
    digits, confidences = recognition.read(recognition.fused(image, path, 0.5))
    np.testing.assert_array_equal(digits, expected.argmax(axis=1))
    np.testing.assert_allclose(confidences, expected.max(axis=1), rtol=1e-6)
