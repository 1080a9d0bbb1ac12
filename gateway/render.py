"""Image challenges: the digits drawn as a distorted, noisy PNG, so that they never
exist as text on the client device (and are harder for a bot to read off)."""

from __future__ import annotations

import io
import secrets

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CELL_W, HEIGHT = 64, 96


def render_digits(digits: str) -> bytes:
    rng = np.random.default_rng(secrets.randbits(64))  # unpredictable distortions
    font = ImageFont.load_default(size=int(rng.integers(52, 64)))
    canvas = Image.new("L", (CELL_W * len(digits), HEIGHT), 255)
    for index, digit in enumerate(digits):
        cell = Image.new("L", (CELL_W, HEIGHT), 0)
        ImageDraw.Draw(cell).text((CELL_W / 2 + rng.normal(0, 3), HEIGHT / 2 + rng.normal(0, 4)), digit,
                                  fill=255, font=font, anchor="mm")
        cell = cell.rotate(float(rng.uniform(-18, 18)), resample=Image.Resampling.BILINEAR)
        canvas.paste(0, (index * CELL_W, 0), cell)  # dark ink where the digit is
    draw = ImageDraw.Draw(canvas)
    for _ in range(len(digits)):  # strokes across cells
        points = [(float(rng.uniform(0, canvas.width)), float(rng.uniform(0, HEIGHT))) for _ in range(2)]
        draw.line(points, fill=int(rng.integers(60, 160)), width=int(rng.integers(1, 3)))
    pixels = np.asarray(canvas, dtype=np.float32)
    # a gentle horizontal wave, then speckle noise
    rows = np.arange(HEIGHT)[:, None]
    shift = (3 * np.sin(rows / rng.uniform(8, 14) + rng.uniform(0, 6))).astype(int)
    columns = (np.arange(canvas.width)[None, :] + shift) % canvas.width
    pixels = pixels[rows, columns] + rng.normal(0, 18, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
