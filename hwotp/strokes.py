"""Pen trajectories as clients send them: checked before anything is stored.

Coordinates are the box's pixels (y down), t_ms counts from the box's first
point (0 where the client has no clock), pressure is in [0, 1] (0: unknown).
"""

from __future__ import annotations

import math

import numpy as np

from google.protobuf.message import DecodeError

from hwotp.errors import InvalidInput
from hwotp.v1 import handwriting_pb2

MAX_STROKES = 64
MAX_POINTS = 4096  # per box, all strokes together
# A pen may leave its box while writing; beyond this it is not handwriting.
MIN_COORDINATE, MAX_COORDINATE = -4096.0, 8192.0
MAX_T_MS = 600_000.0
# a pen's orientation, radians (a float's rounding allowed for)
MAX_AZIMUTH, MAX_ALTITUDE = 2 * math.pi + 1e-4, math.pi / 2 + 1e-4


def check(strokes, where: str) -> None:
    """Raise InvalidInput naming `where` (e.g. "sample 3") and the rule a trajectory breaks
    (no strokes at all is no trajectory, and passes)."""
    if len(strokes) > MAX_STROKES:
        raise InvalidInput(f"{where}: {len(strokes)} strokes; at most {MAX_STROKES}")
    points = sum(len(stroke.points) for stroke in strokes)
    if points > MAX_POINTS:
        raise InvalidInput(f"{where}: {points} points; at most {MAX_POINTS} per box")
    last_t = 0.0
    for number, stroke in enumerate(strokes):
        if not stroke.points:
            raise InvalidInput(f"{where}: stroke {number} has no points")
        for point in stroke.points:
            if not all(math.isfinite(v) for v in (point.x, point.y, point.t_ms, point.pressure, point.azimuth,
                                                  point.altitude)):
                raise InvalidInput(f"{where}: stroke {number} holds a value that is not a finite number")
            if not (MIN_COORDINATE <= point.x <= MAX_COORDINATE and MIN_COORDINATE <= point.y <= MAX_COORDINATE):
                raise InvalidInput(f"{where}: stroke {number}: coordinates must lie in "
                                   f"[{MIN_COORDINATE:g}, {MAX_COORDINATE:g}] box pixels")
            if not 0 <= point.pressure <= 1:
                raise InvalidInput(f"{where}: stroke {number}: pressure must lie in [0, 1]")
            if not (0 <= point.azimuth <= MAX_AZIMUTH and 0 <= point.altitude <= MAX_ALTITUDE):
                raise InvalidInput(f"{where}: stroke {number}: azimuth must lie in [0, 2 pi] and altitude in "
                                   "[0, pi/2] radians")
            if not last_t <= point.t_ms <= MAX_T_MS:
                raise InvalidInput(f"{where}: stroke {number}: t_ms must not decrease and lie in [0, {MAX_T_MS:g}]")
            last_t = point.t_ms


def to_arrays(strokes, where: str) -> list[np.ndarray]:
    """Checked strokes -> (n, 3) float32 arrays of x, y, t_ms; they must hold some ink: points
    at least a pixel apart."""
    check(strokes, where)
    arrays = [np.array([(p.x, p.y, p.t_ms) for p in stroke.points], dtype=np.float32) for stroke in strokes]
    if not arrays or np.ptp(np.concatenate(arrays)[:, :2], axis=0).max() < 1:
        raise InvalidInput(f"{where}: the strokes hold no ink (every point within one pixel)")
    return arrays


def to_points(strokes, where: str) -> list[np.ndarray]:
    """Checked strokes -> (n, 6) float64 arrays of x, y, t_ms, pressure, azimuth, altitude (for a signature)."""
    check(strokes, where)
    return [np.array([(p.x, p.y, p.t_ms, p.pressure, p.azimuth, p.altitude) for p in stroke.points],
                     dtype=np.float64) for stroke in strokes]


def deserialized(data: bytes, where: str):
    """A serialized hwotp.v1.Handwriting (as the gateway passes strokes on and the verifier
    keeps them) -> its strokes, unchecked."""
    try:
        return handwriting_pb2.Handwriting.FromString(data).strokes
    except DecodeError:
        raise InvalidInput(f"{where}: not a serialized Handwriting message") from None
