"""The committed ONNX models: they load, take any batch size, agree with torch, and recognise digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwotp.models import DEFAULT_MODELS_DIR
from hwotp.onnx_model import sha256_of
from training import nets


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
    fields = test_digits.images[:256, None]
    with torch.no_grad():
        expected = model(torch.from_numpy(np.ascontiguousarray(fields))).numpy()
    onnx = bundle.recognizer if which is None else bundle.verifier(which)[0]
    np.testing.assert_allclose(onnx(fields), expected, atol=2e-4, rtol=1e-3)


def test_metadata_matches_the_files(bundle):
    for entry in ("recognizer", "verifier", "baseline_verifier"):
        meta = bundle.meta[entry]
        assert sha256_of(Path(bundle.directory) / meta["file"]) == meta["sha256"]
        assert meta["input"]["shape"] == ["batch", 1, 28, 28]
    for far in bundle.target_fars:
        for policy in ("all_pass", "fused_mean"):
            by_length = [bundle.threshold(policy, n, far) for n in range(1, 11)]
            assert all(np.isfinite(by_length))
    # a stricter false-accept target never lowers a threshold
    loose, strict = bundle.target_fars[-1], bundle.target_fars[0]
    assert all(bundle.threshold("all_pass", n, strict) >= bundle.threshold("all_pass", n, loose) for n in range(1, 11))


def test_recognizer_reads_held_out_writers(bundle, test_digits):
    predicted = bundle.recognizer(test_digits.images[:2000, None]).argmax(axis=1)
    assert (predicted == test_digits.digits[:2000]).mean() >= 0.99
