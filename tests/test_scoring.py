"""Writer scoring and the evaluation protocol, on data whose answer is known."""

import numpy as np
import pytest

from hwotp import scoring
from training import protocol


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_templates_are_per_digit_means_at_unit_length():
    embeddings = unit(np.eye(4)[[0, 1, 2, 3] * 5])[:20]
    digits = np.repeat(np.arange(10), 2)
    templates = scoring.make_templates(embeddings, digits)
    assert templates.shape == (10, 4)
    np.testing.assert_allclose(templates[0], unit(embeddings[:2].mean(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(templates, axis=1), 1.0, rtol=1e-6)


def test_missing_digit_cannot_make_templates():
    with pytest.raises(ValueError, match="digit 9"):
        scoring.make_templates(unit(np.ones((9, 4))), np.arange(9))


def test_own_writer_scores_higher_with_and_without_cohort():
    rng = np.random.default_rng(0)
    styles = unit(rng.normal(size=(30, 16)))  # writer style vectors
    templates = np.repeat(styles[:, None, :], 10, axis=1)
    probes = unit(styles[:5] + 0.3 * rng.normal(size=(5, 16)))
    digits = np.arange(5)
    for config in (scoring.ScoringConfig(), scoring.ScoringConfig("cosine", 0.25, 10),
                   scoring.ScoringConfig("euclidean")):
        scores = scoring.Scorer(templates[5:], config)(probes, digits, templates[:5])
        assert scores.shape == (5, 5)
        assert (scores.argmax(axis=1) == np.arange(5)).all()


def test_raw_score_mixes_own_digit_and_the_mean_of_the_others():
    rng = np.random.default_rng(1)
    templates = unit(rng.normal(size=(7, 10, 16)))
    probes, digits = unit(rng.normal(size=(12, 16))), rng.integers(0, 10, 12)
    config = scoring.ScoringConfig("cosine", cross_digit_weight=0.3)
    similarity = np.einsum("pd,tkd->ptk", probes, templates)  # every probe, template, digit
    own = similarity[np.arange(12), :, digits]
    others = (similarity.sum(axis=2) - own) / 9
    expected = 0.7 * own + 0.3 * others
    np.testing.assert_allclose(scoring.raw_scores(probes, digits, templates, config), expected, atol=1e-5)
    views = scoring.by_digit(templates, config)
    np.testing.assert_allclose(scoring.raw_scores(probes, digits, templates, config, views), expected, atol=1e-5)


def test_error_rates_on_known_distributions():
    genuine = np.array([0.9, 0.8, 0.7, 0.6])
    impostor = np.array([0.1, 0.2, 0.3, 0.65])
    assert protocol.eer(genuine, impostor) == pytest.approx(0.25)
    assert protocol.frr_at_far(genuine, impostor, 0.0) == pytest.approx(0.25)
    assert protocol.eer(genuine, impostor - 1) == 0.0
    threshold = protocol.threshold_at_far(impostor, 0.25)
    assert (impostor > threshold).mean() <= 0.25


def _impostor_pairs(writers: int, per_pair: int):
    """Every ordered pair of distinct writers, per_pair attempts each: (claimed, real) writers."""
    pairs = [(t, i) for t in range(writers) for i in range(writers) if t != i]
    targets, impostors = np.repeat(np.array(pairs).T, per_pair, axis=1)
    return targets, impostors


def test_a_bootstrap_threshold_without_look_alike_writers_is_about_the_plain_one():
    targets, impostors = _impostor_pairs(30, 20)
    impostor = np.random.default_rng(2).normal(size=len(targets))
    plain = protocol.threshold_at_far(impostor, 0.01)
    median = protocol.threshold_holding_far(impostor, targets, impostors, 0.01, 0.5)
    assert abs(median - plain) < 0.15
    assert protocol.threshold_holding_far(impostor, targets, impostors, 0.01, 0.9) >= median


def test_a_look_alike_pair_raises_the_bootstrap_threshold_above_the_plain_one():
    targets, impostors = _impostor_pairs(12, 50)
    impostor = np.random.default_rng(3).normal(size=len(targets))
    look_alike = (targets == 0) & (impostors == 1)
    impostor[look_alike] += 4  # writer 1 writes like writer 0: under 1% of the attempts, all high
    plain = protocol.threshold_at_far(impostor, 0.01)
    confident = protocol.threshold_holding_far(impostor, targets, impostors, 0.01, 0.9)
    # resamples that draw both writers twice give the pair four times its weight, over the target
    assert confident > plain + 1
    assert (impostor > confident).mean() < (impostor > plain).mean()


def _eer_interval_of(impostor_shift: np.ndarray, targets: np.ndarray, impostors: np.ndarray):
    rng = np.random.default_rng(4)
    genuine_writers = np.repeat(np.arange(targets.max() + 1), 50)
    genuine, impostor = rng.normal(4, 1, len(genuine_writers)), rng.normal(0, 1, len(targets)) + impostor_shift
    interval = protocol.eer_interval(genuine, impostor, genuine_writers, targets, impostors)
    return protocol.eer(genuine, impostor), interval


def test_the_eer_interval_holds_the_figure_and_widens_when_few_writers_make_the_errors():
    targets, impostors = _impostor_pairs(12, 50)
    eer, (low, high) = _eer_interval_of(np.zeros(len(targets)), targets, impostors)
    assert low <= eer <= high and high - low < 0.05
    # the same share of high impostor scores, all from two look-alike pairs instead of spread
    look_alike = ((targets == 0) & (impostors == 1)) | ((targets == 2) & (impostors == 3))
    spread = np.random.default_rng(5).permutation(look_alike)
    _, (spread_low, spread_high) = _eer_interval_of(4.0 * spread, targets, impostors)
    _, (pair_low, pair_high) = _eer_interval_of(4.0 * look_alike, targets, impostors)
    assert pair_high - pair_low > 1.5 * (spread_high - spread_low)


def test_the_far_interval_holds_the_rate_and_widens_when_one_pair_makes_the_accepts():
    targets, impostors = _impostor_pairs(12, 50)
    one_pair = (targets == 0) & (impostors == 1)
    spread = np.random.default_rng(6).permutation(one_pair)
    low, high = protocol.far_interval(spread, targets, impostors)
    pair_low, pair_high = protocol.far_interval(one_pair, targets, impostors)
    assert low <= spread.mean() <= high and pair_low <= one_pair.mean() <= pair_high
    # most draws miss writer 0 or writer 1, and with them every accept; the others repeat them
    assert pair_low == 0 and pair_high > 2 * high


def test_attempts_are_built_from_real_probes_of_distinct_digits():
    writers = np.repeat(np.arange(6), 60)
    digits = np.tile(np.repeat(np.arange(10), 6), 6)
    enrolment = protocol.enrol(digits, writers, 3)
    assert len(enrolment.writers) == 6 and enrolment.skipped_writers == 0
    owners_score = (enrolment.probe_owner[:, None] == np.arange(6)[None, :]).astype(np.float32)
    attempts = protocol.build_attempts(enrolment, owners_score, 4, 10, seed=0)
    assert attempts.genuine.shape == (60, 4) and attempts.impostor.shape == (60, 4)
    assert (attempts.genuine == 1).all() and (attempts.impostor == 0).all()
    for row in attempts.genuine_probes:
        assert len(set(enrolment.probe_digit[row])) == 4  # distinct digits
        assert len(set(enrolment.probe_owner[row])) == 1  # one writer
    impostor_digits = enrolment.probe_digit[attempts.impostor_probes]
    np.testing.assert_array_equal(impostor_digits, enrolment.probe_digit[attempts.genuine_probes])
    # an impostor attempt is one other writer's hand throughout
    assert (attempts.impostor_writers != attempts.impostor_targets).all()
    np.testing.assert_array_equal(enrolment.probe_owner[attempts.impostor_probes],
                                  np.repeat(attempts.impostor_writers[:, None], 4, axis=1))


def test_writers_short_of_a_digit_are_skipped_and_counted():
    writers = np.array([0] * 30 + [1] * 29)
    digits = np.concatenate([np.repeat(np.arange(10), 3), np.repeat(np.arange(10), 3)[:29]])
    assert protocol.enrol(digits, writers, 3).skipped_writers == 1


def test_digit_calibration_is_monotonic_and_evens_out_digits():
    rng = np.random.default_rng(1)
    digits = np.repeat(np.arange(10), 200)
    separation = np.where(digits == 1, 1.0, 3.0)  # "1" carries less style
    genuine = np.zeros((2000, 2), dtype=bool)
    genuine[:, 0] = True
    scores = np.stack([separation + rng.normal(size=2000), rng.normal(size=2000)], axis=1)
    config = scoring.fit_digit_calibration(scores, digits, genuine, scoring.ScoringConfig())
    assert all(slope > 0 for slope in config.digit_slope)  # a higher score never calibrates lower
    assert config.digit_slope[1] < config.digit_slope[0]
    slope, midpoint = np.asarray(config.digit_slope)[digits], np.asarray(config.digit_midpoint)[digits]
    calibrated = slope[:, None] * (scores - midpoint[:, None])
    assert calibrated[digits == 1, 0].mean() > calibrated[digits == 1, 1].mean() + 0.5  # still separates
    assert abs(np.mean(calibrated[digits == 3, 1]) + np.mean(calibrated[digits == 3, 0])) < 0.5  # symmetric LLR


def test_most_typical_is_the_sample_closest_to_the_others():
    center = unit([[1, 0, 0]])[0]
    samples = unit([[1, 0.5, 0], [1, -0.5, 0], [1, 0.05, 0.05], [1, 0, 0.6]])
    assert scoring.most_typical(samples) == 2
    assert np.argmax(samples @ center) == 2


@pytest.mark.parametrize("policy,scores,accepted,near_miss", [
    ("all_pass", [2.0, 3.0], True, False),
    ("all_pass", [2.0, 0.5], False, True),   # the failing digit within the margin
    ("all_pass", [2.0, -0.5], False, False),
    ("fused_mean", [3.0, 0.0], True, False),
    ("fused_mean", [1.0, 0.6], False, True),
    ("fused_mean", [0.5, -1.0], False, False),
])
def test_writer_check_accepts_and_tells_near_misses(policy, scores, accepted, near_miss):
    assert scoring.writer_check(np.array(scores), policy, threshold=1.0, margin=1.0) == (accepted, near_miss)


@pytest.mark.parametrize("scores,accepted,near_miss", [
    ([6.0, 6.0, -2.0], True, False),   # the mean passes and no box is clearly another writer's
    ([9.0, 9.0, -5.0], False, False),  # the mean passes, but one box lies under the floor
    ([1.0, 1.0, -3.5], False, True),   # short of the threshold, within the margin, above the floor
])
def test_fused_mean_fails_any_box_under_the_floor(scores, accepted, near_miss):
    assert scoring.writer_check(np.array(scores), "fused_mean", threshold=0.0, margin=2.0, floor=-4.0) == \
        (accepted, near_miss)
