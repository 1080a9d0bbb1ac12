"""The committed ONNX models: they load, take any batch size, agree with torch, and recognise digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwotp import trajectory
from hwotp.models import DEFAULT_MODELS_DIR, IMAGE, IMAGE_ONLINE, SCAN, STROKES, ModelBundle
from hwotp.onnx_model import sha256_of
from training import nets, quantize, strokes


@pytest.mark.parametrize("batch", [1, 6, 64])
def test_dynamic_batch(bundle, test_digits, batch):
    fields = test_digits.images[:batch, None]
    assert bundle.recognizer(fields).shape == (batch, 10)
    embedder, _, _ = bundle.verifier()
    embeddings = embedder(fields)
    assert embeddings.shape == (batch, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("name,net,which", [
    ("recognizer", nets.RecognizerEnsemble, None), ("verifier", nets.Embedder, "deployed"),
    ("baseline-verifier", nets.Embedder, "baseline"),
])
def test_onnx_agrees_with_torch(bundle, test_digits, name, net, which):
    model = net()
    model.load_state_dict(torch.load(DEFAULT_MODELS_DIR / "torch" / f"{name}.pt", weights_only=True))
    model.eval()
    fields = test_digits.images[:512, None]
    with torch.no_grad():
        expected = model(torch.from_numpy(np.ascontiguousarray(fields))).numpy()
    onnx = bundle.recognizer if which is None else bundle.verifier(which)[0]
    served = onnx(fields)
    if not quantize.is_quantized(onnx.path):
        np.testing.assert_allclose(served, expected, atol=2e-4, rtol=1e-3)
    elif which is None:  # int8: the same digit read, nearly always
        assert (served.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.995
    else:  # int8: nearly the same direction
        cosine = (served * expected).sum(axis=1)
        assert cosine.mean() >= 0.995 and cosine.min() >= 0.97


@pytest.mark.parametrize("name", ["online-verifier", "online-recognizer"])
def test_online_models_agree_with_torch_and_take_any_batch(bundle, stroke_writers, name):
    state = torch.load(DEFAULT_MODELS_DIR / "torch" / f"{name}.pt", weights_only=True)
    if name == "online-verifier":
        model, served = nets.PathEmbedderEnsemble.from_state(state), bundle.online_verifier
    else:
        model, served = nets.PathRecognizer(), bundle.online_recognizer
        model.load_state_dict(state)
        model.eval()
    genuine, _ = stroke_writers
    paths = genuine.paths(genuine.enrol_index)
    with torch.no_grad():
        expected = model(torch.from_numpy(paths)).numpy()
    for batch in (1, 6, len(paths)):
        np.testing.assert_allclose(served(paths[:batch]), expected[:batch], atol=2e-4, rtol=1e-3)
    entry = bundle.meta[name.replace("-", "_")]
    assert entry["input"]["shape"] == ["batch", trajectory.CHANNELS, trajectory.POINTS]


def test_held_out_writers_strokes_are_read_at_least_as_well_with_their_paths(bundle, stroke_samples):
    held_out = strokes.samples_of(stroke_samples, "test")
    rendered, _ = strokes.digit_set(held_out)
    paths = strokes.paths_of(held_out)
    image_alone = (bundle.recognizer(rendered.images[:, None]).argmax(axis=1) == rendered.digits).mean()
    both = (bundle.digit_logits(rendered.images[:, None], paths).argmax(axis=1) == rendered.digits).mean()
    assert both >= image_alone  # the path's weight was chosen on validation writers, where it reads better
    # a box that came without its path is read from the picture alone
    np.testing.assert_array_equal(bundle.digit_logits(rendered.images[:50, None]).argmax(axis=1),
                                  bundle.recognizer(rendered.images[:50, None]).argmax(axis=1))


def test_metadata_matches_the_files(bundle):
    for entry in ("recognizer", "verifier", "baseline_verifier", "online_verifier", "online_recognizer"):
        meta = bundle.meta[entry]
        assert sha256_of(Path(bundle.directory) / meta["file"]) == meta["sha256"]
    for far in bundle.target_fars:
        for policy in ("all_pass", "fused_mean"):
            for domain, modalities in ((SCAN, IMAGE), (STROKES, IMAGE), (STROKES, IMAGE_ONLINE)):
                for depth in bundle.depths(domain):
                    by_length = [bundle.threshold(policy, n, far, domain, modalities, depth) for n in range(1, 11)]
                    assert all(np.isfinite(by_length))
    # a stricter false-accept target never lowers a threshold
    loose, strict = bundle.target_fars[-1], bundle.target_fars[0]
    assert all(bundle.threshold("all_pass", n, strict) >= bundle.threshold("all_pass", n, loose) for n in range(1, 11))


def test_recognizer_reads_held_out_writers(bundle, test_digits):
    predicted = bundle.recognizer(test_digits.images[:2000, None]).argmax(axis=1)
    assert (predicted == test_digits.digits[:2000]).mean() >= 0.99


def test_a_user_is_scored_by_the_deepest_calibration_their_enrolment_reaches(tmp_path):
    thresholds = lambda value: {"0.01": {"fused_mean": {"6": value}}}
    meta = {"decision": {"target_far": 0.01, "thresholds": thresholds(0.0)},
            "domains": {STROKES: {"scoring": {"cross_digit_weight": 0.5}, "thresholds": thresholds(1.0),
                                  "depths": {"3": {"scoring": {"cross_digit_weight": 0.25}, "thresholds": thresholds(3.0)},
                                             "5": {"scoring": {}, "thresholds": thresholds(5.0)}}}}}
    bundle = ModelBundle(tmp_path, meta)
    assert bundle.depths(STROKES) == [1, 3, 5] and bundle.depths(SCAN) == [1]
    found = {depth: bundle.threshold("fused_mean", 6, domain=STROKES, depth=depth) for depth in (1, 2, 3, 4, 5, 9)}
    assert found == {1: 1.0, 2: 1.0, 3: 3.0, 4: 3.0, 5: 5.0, 9: 5.0}
    assert [bundle.scoring_config(domain=STROKES, depth=d).cross_digit_weight for d in (1, 4, 5)] == [0.5, 0.25, 0.0]


def test_an_online_model_that_reads_other_paths_than_the_code_makes_is_refused(bundle):
    # the image verifier standing in for an online model of another version
    mismatched = ModelBundle(bundle.directory, {**bundle.meta, "online_verifier": bundle.meta["verifier"]})
    with pytest.raises(ValueError, match=r"reads paths of \[1, 28, 28\].*different versions"):
        mismatched.online_verifier
    assert bundle.online_verifier.input_shape[1:] == [trajectory.CHANNELS, trajectory.POINTS]
