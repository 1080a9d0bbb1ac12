"""The one renderer: pen strokes -> the model input, for serving and training alike.

A box that comes as strokes is drawn here, never taken from a client's picture
of it: the strokes' bounding box is scaled so that its longer side spans
CANVAS pixels, each stroke is drawn as a round-jointed, round-capped polyline
PEN_WIDTH of that side wide (MNIST's strokes are about a tenth of the digit's height), 4x
supersampled for anti-aliasing, and the ink is then normalised as a scanned
box is (hwotp.preprocess). Coordinates are any unit, y pointing down.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from hwotp.preprocess import InvalidImage, prepare_ink

CANVAS = 64
PEN_WIDTH = 0.11
_SUPERSAMPLE = 4


def render_strokes(strokes: Sequence[np.ndarray], pen_width: float = PEN_WIDTH) -> np.ndarray:
    """(n_i, 2+) arrays of x, y -> an ink map, float32, 1 = ink."""
    points = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    if not points:
        raise InvalidImage("no ink: the strokes hold no points")
    every = np.concatenate(points)
    low, span = every.min(axis=0), np.ptp(every, axis=0)
    scale = (CANVAS - 1) / max(span.max(), 1e-6)
    width = max(1, round(pen_width * CANVAS * _SUPERSAMPLE))
    margin = width  # room for the pen around the ink
    size = CANVAS * _SUPERSAMPLE + 2 * margin
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    radius = width / 2
    for stroke in points:
        xy = [tuple(point) for point in (margin + (stroke - low) * scale * _SUPERSAMPLE).tolist()]
        if len(xy) > 1:
            draw.line(xy, fill=255, width=width)
        # a disk at every point rounds the joints and the caps (and draws dots): as PIL's
        # curved joints do, for a third of their cost
        for x, y in xy:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    small = canvas.resize((size // _SUPERSAMPLE, size // _SUPERSAMPLE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def prepare_strokes(strokes: Sequence[np.ndarray], pen_width: float = PEN_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Strokes -> 28x28 float32 model input and its replay fingerprint."""
    return prepare_ink(render_strokes(strokes, pen_width))


def png_of_strokes(strokes: Sequence[np.ndarray]) -> bytes:
    """The server's picture of a box written as strokes: its ink, dark on light, as a PNG."""
    ink = render_strokes(strokes)
    out = io.BytesIO()
    Image.fromarray(np.uint8(255 - ink * 255), mode="L").save(out, format="PNG")
    return out.getvalue()
