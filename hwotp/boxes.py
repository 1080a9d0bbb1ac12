"""Box messages <-> model input arrays, shared by the gateway and the model services."""

from __future__ import annotations

import numpy as np

from hwotp.errors import InvalidInput
from hwotp.preprocess import InvalidImage, preprocess_box
from hwotp.v1 import handwriting_pb2

_FIELD_BYTES = 28 * 28 * 4


def to_batch(boxes) -> np.ndarray:
    """Box messages (image or normalised) -> (n, 1, 28, 28) float32."""
    if len(boxes) == 0:
        raise InvalidInput("no boxes given")
    out = np.empty((len(boxes), 1, 28, 28), dtype=np.float32)
    for index, box in enumerate(boxes):
        kind = box.WhichOneof("content")
        try:
            if kind == "normalized":
                if len(box.normalized) != _FIELD_BYTES:
                    raise InvalidImage(f"normalized box must be {_FIELD_BYTES} bytes (784 float32)")
                field = np.frombuffer(box.normalized, dtype="<f4").reshape(28, 28)
                if not np.all(np.isfinite(field)) or field.min() < 0 or field.max() > 1:
                    raise InvalidImage("normalized box values must lie in [0, 1]")
                out[index, 0] = field
            elif kind == "image":
                out[index, 0] = preprocess_box(box.image)
            else:
                raise InvalidImage("box holds neither an image nor a normalized field")
        except InvalidImage as exc:
            raise InvalidImage(f"box {index}: {exc}") from exc
    return out


def from_batch(batch: np.ndarray) -> list:
    """(n, 1, 28, 28) float32 -> normalised Box messages."""
    return [handwriting_pb2.Box(normalized=np.ascontiguousarray(field, dtype="<f4").tobytes()) for field in batch]
