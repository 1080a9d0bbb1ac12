"""The committed ONNX models: they load, take any batch size, agree with torch, and recognise digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwotp.models import DEFAULT_MODELS_DIR, IMAGE, IMAGE_ONLINE, SCAN, STROKES
from hwotp.onnx_model import sha256_of
from training import nets, quantize


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


def test_online_verifier_agrees_with_torch_and_takes_any_batch(bundle, stroke_writers):
    model = nets.PathEmbedder()
    model.load_state_dict(torch.load(DEFAULT_MODELS_DIR / "torch" / "online-verifier.pt", weights_only=True))
    model.eval()
    genuine, _ = stroke_writers
    paths = genuine.paths(genuine.enrol_index)
    with torch.no_grad():
        expected = model(torch.from_numpy(paths)).numpy()
    for batch in (1, 6, len(paths)):
        np.testing.assert_allclose(bundle.online_verifier(paths[:batch]), expected[:batch], atol=2e-4, rtol=1e-3)
    assert bundle.meta["online_verifier"]["input"]["shape"] == ["batch", 7, 64]


def test_metadata_matches_the_files(bundle):
    for entry in ("recognizer", "verifier", "baseline_verifier", "online_verifier"):
        meta = bundle.meta[entry]
        assert sha256_of(Path(bundle.directory) / meta["file"]) == meta["sha256"]
    for far in bundle.target_fars:
        for policy in ("all_pass", "fused_mean"):
            for domain, modalities in ((SCAN, IMAGE), (STROKES, IMAGE), (STROKES, IMAGE_ONLINE)):
                by_length = [bundle.threshold(policy, n, far, domain, modalities) for n in range(1, 11)]
                assert all(np.isfinite(by_length))
    # a stricter false-accept target never lowers a threshold
    loose, strict = bundle.target_fars[-1], bundle.target_fars[0]
    assert all(bundle.threshold("all_pass", n, strict) >= bundle.threshold("all_pass", n, loose) for n in range(1, 11))


def test_recognizer_reads_held_out_writers(bundle, test_digits):
    predicted = bundle.recognizer(test_digits.images[:2000, None]).argmax(axis=1)
    assert (predicted == test_digits.digits[:2000]).mean() >= 0.99
