"""Box messages <-> model inputs and replay fingerprints, shared by the gateway and the model services."""

from __future__ import annotations

import numpy as np

from hwotp.errors import InvalidInput
from hwotp.internal.v1 import box_pb2
from hwotp.preprocess import FINGERPRINT_BYTES

_FIELD_BYTES = 28 * 28 * 4


def to_batch(boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box messages -> (n, 1, 28, 28) float32 fields, (n, 1024) int8 fingerprints, and
    (n,) bool: which boxes have a fingerprint (a box sent without one has none)."""
    if len(boxes) == 0:
        raise InvalidInput("no boxes given")
    fields = np.empty((len(boxes), 1, 28, 28), dtype=np.float32)
    fingerprints = np.zeros((len(boxes), FINGERPRINT_BYTES), dtype=np.int8)
    known = np.zeros(len(boxes), dtype=bool)
    for index, box in enumerate(boxes):
        if len(box.normalized) != _FIELD_BYTES:
            raise InvalidInput(f"box {index}: normalized must be {_FIELD_BYTES} bytes (784 float32)")
        field = np.frombuffer(box.normalized, dtype="<f4").reshape(28, 28)
        if not np.all(np.isfinite(field)) or field.min() < 0 or field.max() > 1:
            raise InvalidInput(f"box {index}: normalized values must lie in [0, 1]")
        fields[index, 0] = field
        if box.fingerprint:
            if len(box.fingerprint) != FINGERPRINT_BYTES:
                raise InvalidInput(f"box {index}: fingerprint must be {FINGERPRINT_BYTES} bytes")
            fingerprints[index] = np.frombuffer(box.fingerprint, dtype=np.int8)
            known[index] = True
    return fields, fingerprints, known


def from_batch(fields: np.ndarray, fingerprints: np.ndarray) -> list:
    """Fields and fingerprints the gateway computed -> Box messages."""
    return [box_pb2.Box(normalized=np.ascontiguousarray(field, dtype="<f4").tobytes(),
                        fingerprint=fingerprint.tobytes())
            for field, fingerprint in zip(fields, fingerprints)]


def fingerprints(raw) -> np.ndarray:
    """Serialized replay fingerprints -> (n, 1024) int8."""
    if len(raw) > 10 or any(len(item) != FINGERPRINT_BYTES for item in raw):
        raise InvalidInput(f"at most 10 fingerprints of {FINGERPRINT_BYTES} bytes each")
    return np.frombuffer(b"".join(raw), dtype=np.int8).reshape(-1, FINGERPRINT_BYTES)
