"""One handwritten box -> the model input, the same code for serving and training.

The model input is the MNIST normalisation: the ink's bounding box scaled to fit
20x20 keeping its aspect ratio, placed in a 28x28 field so that the centre of
mass lies at the centre, white ink on black, float32 in [0, 1].
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageOps

from hwotp.errors import InvalidInput

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096
MIN_SIDE = 8
# What decoding may cost: a box of a touchscreen or a scan needs far fewer pixels.
MAX_PIXELS = 2048 * 1024
ACCEPTED_FORMATS = ("PNG", "JPEG")

_FIELD = 28
_BOX = 20
# Below this the pixel is background noise (JPEG ringing, paper texture).
_INK_THRESHOLD = 0.1
# A box whose ink is this faint holds no writing.
_MIN_CONTRAST = 0.15


class InvalidImage(InvalidInput):
    """The bytes are not a usable image of one handwritten digit."""


def decode_box(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG bytes into an ink map: float32, 1 = ink, 0 = background."""
    if not data:
        raise InvalidImage("image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidImage(f"image is {len(data)} bytes; the limit is {MAX_IMAGE_BYTES}")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"image dimensions are too large; the largest side allowed is {MAX_SIDE}") from exc
    except Exception as exc:  # PIL raises many types for garbage input
        raise InvalidImage("not a PNG or JPEG image") from exc
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImage(f"image format {image.format} is not accepted; send PNG or JPEG")
    width, height = image.size
    # Checked from the header, before any pixel is decompressed: this is what
    # stops decompression bombs.
    if max(width, height) > MAX_SIDE:
        raise InvalidImage(f"image is {width}x{height}; the largest side allowed is {MAX_SIDE}")
    if min(width, height) < MIN_SIDE:
        raise InvalidImage(f"image is {width}x{height}; the smallest side allowed is {MIN_SIDE}")
    if width * height > MAX_PIXELS:
        raise InvalidImage(f"image is {width}x{height} = {width * height} pixels; at most {MAX_PIXELS}")
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return _ink_map(image)
    except InvalidImage:
        raise
    except Exception as exc:
        raise InvalidImage(f"image data is corrupt: {exc.__class__.__name__}") from exc


def _ink_map(image: Image.Image) -> np.ndarray:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        # Canvas exports draw strokes on a transparent background: the alpha
        # channel is then the ink, whatever colour the strokes were given.
        if alpha.min() < 0.5:
            return _stretch(alpha)
    gray = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32) / 255.0
    background = _border_median(gray)
    if background > 0.5:  # dark ink on a light background
        return _stretch(1.0 - gray)
    return _stretch(gray, background)


def _border_median(pixels: np.ndarray) -> float:
    """np.median of the outermost pixels, bit for bit, at a quarter of its cost: the same
    two middle values (a border always holds an even count), averaged in float32 as
    np.median does."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    half = len(border) // 2
    low, high = np.partition(border, (half - 1, half))[half - 1 : half + 1]
    return float((low + high) / 2)


def _stretch(ink: np.ndarray, background: float | None = None) -> np.ndarray:
    """background: the border median of `ink`, when the caller has it already."""
    background = _border_median(ink) if background is None else background
    top = float(ink.max())
    if top - background < _MIN_CONTRAST:
        raise InvalidImage("image holds no visible writing")
    stretched = (ink - background) / (top - background)
    return np.clip(stretched, 0.0, 1.0, out=stretched)


def _ink_window(ink: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Where the ink is (above the noise threshold), and its bounding box."""
    mask = ink > _INK_THRESHOLD
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        raise InvalidImage("image holds no visible writing")
    cols = np.flatnonzero(mask.any(axis=0))
    return mask, (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))


def normalize_digit(ink: np.ndarray) -> np.ndarray:
    """MNIST-normalise an ink map (any size, 1 = ink) into a 28x28 float32 field."""
    ink = np.asarray(ink, dtype=np.float32)
    return _normalize(ink, *_ink_window(ink))


def _normalize(ink: np.ndarray, mask: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    crop = np.where(mask[window], ink[window], 0.0)
    height, width = crop.shape
    scale = _BOX / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) != (width, height):
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        crop = np.asarray(Image.fromarray(crop, mode="F").resize((new_w, new_h), resample))
    crop = np.clip(crop, 0.0, None)
    # Thin strokes scaled down come out grey; the models were trained on
    # saturated MNIST strokes.
    crop = crop / crop.max()
    field = np.zeros((_FIELD, _FIELD), dtype=np.float32)
    total = crop.sum()
    ys, xs = _grid(*crop.shape)
    com_y, com_x = (ys * crop).sum() / total, (xs * crop).sum() / total
    top = min(max(round(_FIELD / 2 - com_y), 0), _FIELD - new_h)
    left = min(max(round(_FIELD / 2 - com_x), 0), _FIELD - new_w)
    field[top : top + new_h, left : left + new_w] = crop
    return field


@functools.cache
def _grid(height: int, width: int) -> np.ndarray:
    """np.indices of a crop (at most the 20x20 box, or the size of a raw field that fits it)."""
    grid = np.indices((height, width))
    grid.flags.writeable = False
    return grid


FINGERPRINT_SIDE = 32
FINGERPRINT_BYTES = FINGERPRINT_SIDE * FINGERPRINT_SIDE


def replay_fingerprint(ink: np.ndarray) -> np.ndarray:
    """The ink cropped to its bounding box and resized to 32x32 (no rounding of
    position, unlike normalize_digit), mean-centred, unit length, as int8.

    A re-encoded or shifted copy of an image keeps a cosine similarity above
    0.98 with it; a fresh sample of the same digit by the same hand rarely does
    (hwotp.replay_check; measured by training.measure_replay)."""
    return _fingerprint(ink, _ink_window(ink)[1])


def _fingerprint(ink: np.ndarray, window: tuple[slice, slice]) -> np.ndarray:
    crop = np.ascontiguousarray(ink[window], dtype=np.float32)
    side = (FINGERPRINT_SIDE, FINGERPRINT_SIDE)
    vector = np.asarray(Image.fromarray(crop, mode="F").resize(side, Image.Resampling.BILINEAR)).ravel()
    vector = vector - vector.mean()
    norm = np.linalg.norm(vector)
    if norm == 0:
        return np.zeros(FINGERPRINT_BYTES, dtype=np.int8)
    return np.round(vector / norm * 127).astype(np.int8)


def preprocess_box(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes of one box -> 28x28 float32 model input."""
    return normalize_digit(decode_box(data))


def prepare_ink(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An ink map -> 28x28 float32 model input and its 1024 int8 replay fingerprint,
    from one bounding box."""
    mask, window = _ink_window(ink)
    return _normalize(ink, mask, window), _fingerprint(ink, window)


def prepare_box(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """PNG/JPEG bytes of one box, decoded once -> model input and replay fingerprint."""
    return prepare_ink(decode_box(data))


def prepare_boxes(boxes: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """A batch of boxes, decoded once -> (n, 1, 28, 28) float32 model inputs and
    (n, 1024) int8 replay fingerprints; raises InvalidImage naming the box."""
    fields = np.empty((len(boxes), 1, _FIELD, _FIELD), dtype=np.float32)
    fingerprints = np.empty((len(boxes), FINGERPRINT_BYTES), dtype=np.int8)
    for index, data in enumerate(boxes):
        try:
            fields[index, 0], fingerprints[index] = prepare_box(data)
        except InvalidImage as exc:
            raise InvalidImage(f"box {index}: {exc}") from exc
    return fields, fingerprints
