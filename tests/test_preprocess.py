"""Preprocessing shared by serving and training: canvas renderings and re-encoded MNIST digits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hwotp.canvas import png_of
from hwotp.preprocess import (MAX_SIDE, InvalidImage, _border_median, decode_box, normalize_digit, prepare_boxes,
                              preprocess_box, replay_fingerprint)

# A "7" with a crossbar and a "4", as polylines in a unit square.
SHAPES = {
    7: [[(0.2, 0.15), (0.8, 0.15), (0.45, 0.9)], [(0.35, 0.5), (0.7, 0.5)]],
    4: [[(0.6, 0.9), (0.6, 0.1), (0.15, 0.65), (0.8, 0.65)]],
}


def canvas_png(digit: int, size=(280, 280), box=(40, 40, 240, 240), width=14, ink=(20, 20, 160),
               paper=(255, 255, 255), mode="RGB", fmt="PNG") -> bytes:
    """Draw a digit the way a touchscreen canvas would: anti-aliased strokes, any colours."""
    scale = 4  # draw big, shrink: anti-aliasing
    image = Image.new(mode, (size[0] * scale, size[1] * scale), paper)
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = (v * scale for v in box)
    for stroke in SHAPES[digit]:
        points = [(x0 + px * (x1 - x0), y0 + py * (y1 - y0)) for px, py in stroke]
        draw.line(points, fill=ink, width=width * scale, joint="curve")
    image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def com(field: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(field.shape)
    return (ys * field).sum() / field.sum(), (xs * field).sum() / field.sum()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("digit", [4, 7])
def test_mnist_normalisation_properties(digit):
    field = preprocess_box(canvas_png(digit))
    assert field.shape == (28, 28) and field.dtype == np.float32
    assert field.min() >= 0 and field.max() == pytest.approx(1.0)
    rows, cols = np.flatnonzero(field.any(axis=1)), np.flatnonzero(field.any(axis=0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == 20  # fitted to 20x20
    cy, cx = com(field)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75  # centre of mass at the centre
    assert field[0].sum() == 0 and field[:, 0].sum() == 0  # background is black


@pytest.mark.parametrize("variant", [
    dict(size=(120, 120), box=(10, 10, 100, 100), width=6),
    dict(size=(600, 400), box=(320, 60, 570, 310), width=18),  # off-centre on a wide canvas
    dict(ink=(255, 255, 255), paper=(0, 0, 0)),  # light ink on dark
    dict(ink=(200, 30, 30), paper=(240, 240, 200)),  # coloured ink on tinted paper
    dict(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)),  # transparent canvas export
    dict(fmt="JPEG"),
    dict(size=(64, 64), box=(8, 12, 50, 56), width=4),
])
@pytest.mark.parametrize("digit", [4, 7])
def test_canvas_variants_normalise_alike(digit, variant):
    reference = preprocess_box(canvas_png(digit))
    assert similarity(preprocess_box(canvas_png(digit, **variant)), reference) > 0.8


def test_different_digits_stay_different():
    assert similarity(preprocess_box(canvas_png(4)), preprocess_box(canvas_png(7))) < 0.5


def _png(array: np.ndarray, size: int, invert: bool, fmt: str = "PNG") -> bytes:
    pixels = (255 - array) if invert else array
    image = Image.fromarray(pixels.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize("size,invert,fmt", [(28, False, "PNG"), (56, True, "PNG"), (200, True, "PNG"), (140, False, "JPEG")])
def test_mnist_digits_reencoded_come_back(test_digits, bundle, size, invert, fmt):
    sample = test_digits.images[:200]
    raw = (sample * 255).round()
    fields = np.stack([preprocess_box(_png(image, size, invert, fmt)) for image in raw])
    assert np.mean([similarity(a, b) for a, b in zip(fields, sample)]) > 0.9
    agreement = bundle.recognizer(fields[:, None]).argmax(1) == test_digits.digits[:200]
    assert agreement.mean() >= 0.97


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"hello, not an image", "not a PNG or JPEG"),
    (canvas_png(7)[:200], "corrupt"),
    (canvas_png(7, fmt="GIF"), "format GIF"),
])
def test_bad_images_are_refused_with_a_reason(data, message):
    with pytest.raises(InvalidImage, match=message):
        preprocess_box(data)


def test_blank_box_is_refused():
    blank = io.BytesIO()
    Image.new("L", (100, 100), 255).save(blank, format="PNG")
    with pytest.raises(InvalidImage, match="no visible writing"):
        preprocess_box(blank.getvalue())


def test_decompression_bomb_is_refused_before_decoding():
    bomb = io.BytesIO()
    Image.new("1", (MAX_SIDE * 4, MAX_SIDE * 4), 0).save(bomb, format="PNG")  # tiny file, huge image
    assert len(bomb.getvalue()) < 1024 * 1024
    with pytest.raises(InvalidImage, match="largest side"):
        preprocess_box(bomb.getvalue())


def test_batch_error_names_the_box():
    with pytest.raises(InvalidImage, match="box 1: image is empty"):
        prepare_boxes([canvas_png(4), b""])


@pytest.mark.parametrize("shape", [(28, 28), (112, 112), (9, 40), (13, 8)])  # square, wide and tall
def test_border_median_is_numpys_median_bit_for_bit(shape):
    rng = np.random.default_rng(sum(shape))
    for pixels in (rng.random(shape, dtype=np.float32),
                   (rng.integers(0, 256, shape) / np.float32(255)).astype(np.float32)):  # ties, as in images
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        assert _border_median(pixels) == float(np.median(border))


def test_a_batch_normalises_each_box_as_one_box_alone(test_digits):
    """prepare_boxes shares one bounding box between the model input and the fingerprint;
    the result is what the public one-box functions give, bit for bit."""
    pngs = [png_of(test_digits.images[i], size=size, dark_on_light=dark)
            for i, size, dark in ((0, 112, True), (1, 64, False), (2, 200, True), (3, 28, False))]
    fields, fingerprints = prepare_boxes(pngs)
    for png, field, fingerprint in zip(pngs, fields, fingerprints):
        ink = decode_box(png)
        assert np.array_equal(field[0], normalize_digit(ink))
        assert np.array_equal(fingerprint, replay_fingerprint(ink))
