"""The verifier's writer decision (services.verifier.verification) with the real models and a real
redis-server: the calibration of the user's enrolment depth, and the strict target under brute force."""

from __future__ import annotations

import numpy as np
import pytest

from hwotp import scoring
from hwotp.metrics import Metrics
from hwotp.models import IMAGE_ONLINE, STROKES
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, new_key_entry
from local.handwriting import StrokeWriter
from services.verifier.templates import TemplateStore
from services.verifier.verification import WriterVerifier
from tests.conftest import STROKE_WRITERS

pytestmark = pytest.mark.integration  # starts processes

FLOOR = -4.0


@pytest.fixture
def verifier(bundle, redis_client) -> WriterVerifier:
    store = TemplateStore(redis_client, Sealer.from_settings(new_key_entry("k"), "k"))
    return WriterVerifier(bundle, store, Metrics("verifier"), "fused_mean", box_floor=FLOOR)


def _prints(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (count, FINGERPRINT_BYTES), dtype=np.int8)


def _enrol(verifier: WriterVerifier, writer, subject: str, per_digit: int) -> np.ndarray:
    rows = np.concatenate([np.flatnonzero(writer.digits == d)[:per_digit] for d in range(10)])
    verifier.enrol(subject, writer.fields(rows), writer.digits[rows], _prints(len(rows), 0), paths=writer.paths(rows))
    return rows


def _verify(verifier: WriterVerifier, writer, subject: str, rows, strict: bool = False):
    return verifier.verify(subject, writer.fields(rows), writer.digits[rows], _prints(len(rows), 1), STROKES,
                           writer.paths(rows), strict)


def test_a_user_is_scored_by_the_calibration_of_their_enrolment_depth(bundle, verifier, stroke_writers):
    genuine, _ = stroke_writers
    deep = _enrol(verifier, genuine, "deep", 3)
    _enrol(verifier, genuine, "shallow", 1)
    probes = [int(genuine.probes[d][0]) for d in range(6)]
    for subject, depth in (("deep", 3), ("shallow", 1)):
        verdict = _verify(verifier, genuine, subject, probes)
        assert verdict.modalities == IMAGE_ONLINE
        # what the depth's calibration says, computed here from the bundle
        rows = deep if depth == 3 else np.array([np.flatnonzero(genuine.digits == d)[0] for d in range(10)])
        digits = genuine.digits[probes]
        embedder, config, cohort = bundle.verifier("deployed", STROKES, depth)
        image = scoring.Scorer(cohort, config)(embedder(genuine.fields(probes)), digits, scoring.make_templates(
            embedder(genuine.fields(rows)), genuine.digits[rows])[None])[:, 0]
        online_config, online_cohort = bundle.online_scoring(depth)
        online = scoring.Scorer(online_cohort, online_config)(
            bundle.online_verifier(genuine.paths(probes)), digits,
            scoring.make_templates(bundle.online_verifier(genuine.paths(rows)), genuine.digits[rows])[None])[:, 0]
        np.testing.assert_allclose(verdict.scores, bundle.image_weight(depth) * image + online, rtol=1e-4, atol=1e-4)
    assert bundle.depths(STROKES) == [1, 3]  # the committed models calibrate both


def test_under_brute_force_an_answer_is_judged_at_the_strict_target(bundle, verifier, stroke_samples):
    """The same genuine answer: accepted at the configured target, rejected at the strict one
    when its mean score lies between their thresholds."""
    mine = [s for s in stroke_samples if s.writer == STROKE_WRITERS[0]]  # every probe, not only the certain ones
    genuine = StrokeWriter([s.strokes for s in mine], np.array([s.digit for s in mine]))
    _enrol(verifier, genuine, "owner", 3)
    loose = bundle.threshold("fused_mean", 6, None, STROKES, IMAGE_ONLINE, 3)
    strict = bundle.threshold("fused_mean", 6, min(bundle.target_fars), STROKES, IMAGE_ONLINE, 3)
    assert strict > loose
    rng = np.random.default_rng(0)
    for _ in range(200):
        digits = rng.choice(10, 6, replace=False)
        rows = [int(rng.choice(genuine.probes[d])) for d in digits]
        relaxed = _verify(verifier, genuine, "owner", rows)
        if loose < relaxed.scores.mean() < strict and relaxed.scores.min() > FLOOR:
            break
    else:
        pytest.fail("no genuine answer of this writer scores between the two thresholds")
    assert relaxed.writer_ok
    judged = _verify(verifier, genuine, "owner", rows, strict=True)
    np.testing.assert_array_equal(judged.scores, relaxed.scores)
    assert not judged.writer_ok
