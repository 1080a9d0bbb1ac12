"""The signature verifier's domain code (hwotp.signature) on real SVC2004 signatures."""

from __future__ import annotations

import numpy as np
import pytest

from hwotp import signature
from hwotp.errors import InvalidInput
from hwotp.models import models_dir
from training import signatures
from training.evaluate_signatures import default_data


@pytest.fixture(scope="module")
def signed():
    raw = signatures.read_signatures(default_data())
    return {key: signatures.strokes_of(rows) for key, rows in raw.items() if key[0] in (2, 3)}


@pytest.fixture(scope="module")
def model():
    return signature.SignatureModel.load(models_dir())


def test_stored_signatures_come_back_as_they_were(signed):
    original = signature.signature_of(signed[(2, 1)])
    back = signature.from_bytes(signature.to_bytes(original))
    np.testing.assert_allclose(back.sequence, original.sequence, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(back.globals, original.globals, rtol=1e-5)
    assert back.duration_ms == pytest.approx(original.duration_ms)


def test_a_copy_with_pixel_jitter_is_a_replay_and_a_fresh_signature_is_not(signed, model):
    enrolled = model.enrol([signature.signature_of(signed[(2, n)]) for n in range(1, 6)])
    rng = np.random.default_rng(3)
    copied = [stroke + np.c_[rng.normal(0, 1, (len(stroke), 2)), np.zeros((len(stroke), stroke.shape[1] - 2))]
              for stroke in signed[(2, 1)]]
    assert enrolled.replayed(signature.signature_of(copied))
    fresh = signature.signature_of(signed[(2, 12)])
    assert not enrolled.replayed(fresh)
    assert enrolled.replayed(fresh, earlier=[fresh])  # once accepted, it cannot come again


def test_the_owners_signature_scores_above_another_users_and_a_forgery(signed, model):
    enrolled = model.enrol([signature.signature_of(signed[(2, n)]) for n in range(1, 6)])
    genuine = np.mean([enrolled.score(signature.signature_of(signed[(2, n)])) for n in range(11, 21)])
    forged = np.mean([enrolled.score(signature.signature_of(signed[(2, n)])) for n in range(21, 41)])
    other = np.mean([enrolled.score(signature.signature_of(signed[(3, n)])) for n in range(11, 21)])
    assert genuine > model.threshold > other and genuine > forged


def test_strokes_that_cannot_be_a_signature_are_named():
    dot = [np.zeros((20, 4))]
    assert "no ink" in signature.problem(dot)
    assert "at least" in signature.problem([np.ones((3, 4))])
    assert signature.problem([]) == "a signature must come as strokes"
    with pytest.raises(InvalidInput, match="no ink"):
        signature.signature_of(dot)


def test_without_a_clock_points_are_taken_as_sampled_at_100_hz(signed):
    timed = signed[(2, 1)]
    untimed = [np.c_[s[:, :2], np.zeros(len(s)), s[:, 3]] for s in timed]
    points = sum(len(s) for s in timed)
    assert signature.signature_of(untimed).duration_ms == pytest.approx(points * 10.0)


def test_a_signature_sampled_at_another_rate_is_the_same_signature(signed, model):
    """Devices sample at 60 to 240 Hz: the verifier resamples in time, so the rate does not count."""
    enrolled = model.enrol([signature.signature_of(signed[(2, n)]) for n in range(1, 6)])
    probe = signed[(2, 12)]
    doubled = []
    for stroke in probe:  # twice the points: a midpoint between every two
        middle = (stroke[1:] + stroke[:-1]) / 2
        both = np.empty((len(stroke) + len(middle), stroke.shape[1]))
        both[0::2], both[1::2] = stroke, middle
        doubled.append(both)
    assert enrolled.score(signature.signature_of(doubled)) == pytest.approx(
        enrolled.score(signature.signature_of(probe)), abs=0.3)
