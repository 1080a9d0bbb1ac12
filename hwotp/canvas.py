"""A digit field drawn as a client would send it: a PNG box like a canvas export."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_of(field: np.ndarray, size: int = 112, dark_on_light: bool = True) -> bytes:
    """A 28x28 ink field (1 = ink) as a size x size grey PNG, like a canvas export."""
    ink = np.clip(np.asarray(field, dtype=np.float32), 0, 1)
    pixels = (255 * (1 - ink if dark_on_light else ink)).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
