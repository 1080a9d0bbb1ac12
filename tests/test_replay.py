"""Replay fingerprints: a re-encoded or shifted copy of a box matches it; fresh writing does not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hwotp.canvas import png_of
from hwotp.preprocess import decode_box, replay_fingerprint
from hwotp.replay_check import DEFAULT_THRESHOLD, replayed, similarities


def reencoded(png: bytes, shift: tuple[int, int], quality: int) -> bytes:
    image = Image.open(io.BytesIO(png))
    image = image.transform(image.size, Image.Transform.AFFINE, (1, 0, shift[0], 0, 1, shift[1]), fillcolor=255)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def fingerprint(png: bytes) -> np.ndarray:
    return replay_fingerprint(decode_box(png))[None]


def test_copies_match_their_original(test_digits):
    """JPEG at quality 60-95, shifted by up to 2 pixels: about 99.5% caught (training.measure_replay)."""
    rng = np.random.default_rng(3)
    found = []
    for index in rng.choice(len(test_digits), 400, replace=False):
        png = png_of(test_digits.images[index])
        copy = reencoded(png, tuple(rng.integers(-2, 3, 2)), int(rng.integers(60, 96)))
        found.append(similarities(fingerprint(copy), fingerprint(png))[0])
    assert np.mean(np.asarray(found) >= DEFAULT_THRESHOLD) >= 0.98
    assert np.median(found) > 0.99


def test_fresh_samples_of_one_hand_rarely_match(test_digits):
    caught = total = 0
    for writer in np.unique(test_digits.writers)[:20]:
        for digit in range(10):
            rows = np.flatnonzero((test_digits.writers == writer) & (test_digits.digits == digit))
            prints = np.concatenate([fingerprint(png_of(test_digits.images[r])) for r in rows])
            for i in range(len(rows)):
                caught += bool(replayed(prints[i : i + 1], np.delete(prints, i, axis=0), DEFAULT_THRESHOLD)[0])
                total += 1
    assert total > 1500 and caught / total < 0.01


def test_no_history_no_replay():
    assert not replayed(np.ones((2, 1024), dtype=np.int8), np.zeros((0, 1024), dtype=np.int8), 0.5).any()
