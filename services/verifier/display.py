"""Display templates: what a user is shown of their own enrolled digit, never the sample itself.

A display template shown on the device must not be an answer: it is a fresh
rendering of the sample's ink (cropped, rescaled, dark on white), never the
enrolled bytes, and its own replay fingerprint joins the enrolment's, so that
submitting it, as shown or re-encoded, is a REPLAY.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hwotp.preprocess import decode_box

HEIGHT = 96
_MARGIN = 0.1


def render(sample: bytes) -> bytes:
    """PNG of the sample's ink, cropped to it with a margin, HEIGHT pixels high."""
    ink = decode_box(sample)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.1), np.flatnonzero(ink.max(axis=0) > 0.1)
    crop = ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    pad = max(1, round(_MARGIN * max(crop.shape)))
    crop = np.pad(crop, pad)
    width = max(1, round(crop.shape[1] * HEIGHT / crop.shape[0]))
    picture = Image.fromarray(np.uint8(255 - np.clip(crop, 0, 1) * 255), mode="L")
    out = io.BytesIO()
    picture.resize((width, HEIGHT), Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()
