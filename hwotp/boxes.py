"""Box messages <-> model inputs and replay fingerprints, shared by the gateway and the model services."""

from __future__ import annotations

import numpy as np

from hwotp.errors import InvalidInput
from hwotp.internal.v1 import box_pb2
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.trajectory import CHANNELS, POINTS

_FIELD_BYTES = 28 * 28 * 4
_PATH_BYTES = CHANNELS * POINTS * 4
_PATH_BOUND = 8.0  # path features are unit-scaled positions, directions and flags


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


def paths_of(boxes) -> np.ndarray | None:
    """The boxes' pen paths, (n, CHANNELS, POINTS) float32, when every box has one; else None
    (a box that came as an image has no path, and a request is judged on what all boxes share)."""
    if not boxes or not all(box.path for box in boxes):
        return None
    paths = np.empty((len(boxes), CHANNELS, POINTS), dtype=np.float32)
    for index, box in enumerate(boxes):
        if len(box.path) != _PATH_BYTES:
            raise InvalidInput(f"box {index}: path must be {_PATH_BYTES} bytes ({CHANNELS}x{POINTS} float32)")
        path = np.frombuffer(box.path, dtype="<f4").reshape(CHANNELS, POINTS)
        if not np.all(np.isfinite(path)) or np.abs(path).max() > _PATH_BOUND:
            raise InvalidInput(f"box {index}: path values must be finite and within ±{_PATH_BOUND:g}")
        paths[index] = path
    return paths


def from_batch(fields: np.ndarray, fingerprints: np.ndarray, paths: np.ndarray | None = None) -> list:
    """Fields, fingerprints and (for strokes) pen paths the gateway computed -> Box messages."""
    return [box_pb2.Box(normalized=np.ascontiguousarray(field, dtype="<f4").tobytes(),
                        fingerprint=fingerprint.tobytes(),
                        path=b"" if paths is None else np.ascontiguousarray(paths[i], dtype="<f4").tobytes())
            for i, (field, fingerprint) in enumerate(zip(fields, fingerprints))]


def fingerprints(raw) -> np.ndarray:
    """Serialized replay fingerprints -> (n, 1024) int8."""
    if len(raw) > 10 or any(len(item) != FINGERPRINT_BYTES for item in raw):
        raise InvalidInput(f"at most 10 fingerprints of {FINGERPRINT_BYTES} bytes each")
    return np.frombuffer(b"".join(raw), dtype=np.int8).reshape(-1, FINGERPRINT_BYTES)
