"""The pen's path as the online model sees it: strokes -> a fixed-length feature sequence.

Serving and training both call path_features(), as both call hwotp.ink for the
picture. The strokes are joined into one path in writing order, the jumps
between strokes included as straight "pen up" segments (where the next stroke
starts, relative to the last, is part of a writer's habit), centred on their
bounding box and scaled by its longer side, and resampled to POINTS points
evenly spaced along the path. Each point carries CHANNELS values: position
(x, y), direction of travel (cos, sin), turning since the previous point
(cos, sin of the angle), whether the pen is up, and the pen's speed there
relative to its mean speed over the whole digit (log, clipped; 0 in the air).

Speed is where a hand hurries and where it slows, a habit that the picture and
the path's shape do not show. It needs time: a point's t_ms (third column) when
every step of the pen on the surface advances the clock, else the order of the
points, which tablets and touchscreens sample at a steady rate while the pen
moves. Being relative, it does not depend on the rate. Pressure is not used:
the training data has none that a touchscreen's would resemble.
Coordinates are any unit, y pointing down.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

POINTS = 64
CHANNELS = 8
SPEED_CHANNEL = 7  # the last; the ones before it describe the path's shape
# log relative speed is clipped to +-this: a stop or a jump between two samples
# says little beyond "much slower" or "much faster"
_SPEED_LIMIT = 3.0


def path_features(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """(n_i, 2+) arrays of x, y[, t_ms, ...] -> (CHANNELS, POINTS) float32."""
    points, times, pen_up = _joined(strokes)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    points = (points - centre) / max(float(np.ptp(points, axis=0).max()), 1e-6)
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)  # per segment, point i to i+1
    resampled, segment = _resample(points, lengths)
    # per segment: pen up, speed (a single point has no segment: one of zeros stands in)
    per_segment = np.stack([pen_up, _relative_speed(lengths, times, pen_up)]) if len(pen_up) else np.zeros((2, 1))
    up, speed = per_segment[:, segment]
    step = np.gradient(resampled, axis=0)
    length = np.linalg.norm(step, axis=1, keepdims=True)
    direction = np.divide(step, length, out=np.zeros_like(step), where=length > 1e-9)
    angle = np.arctan2(direction[:, 1], direction[:, 0])
    turning = np.diff(angle, prepend=angle[:1])
    moving = (length[:, 0] > 1e-9) & (np.roll(length[:, 0], 1) > 1e-9)
    features = np.stack([resampled[:, 0], resampled[:, 1], direction[:, 0], direction[:, 1],
                         np.where(moving, np.cos(turning), 1.0), np.where(moving, np.sin(turning), 0.0), up,
                         speed])
    return features.astype(np.float32)


def _joined(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All points in order; their times (t_ms where every pen-down step advances it, else
    the point's index); and per segment (point i to i+1) whether the pen is up on it."""
    parts = [np.asarray(s, dtype=np.float64) for s in strokes if len(s)]
    if not parts:
        raise ValueError("no ink: the strokes hold no points")
    points = np.concatenate([part[:, :2] for part in parts])
    pen_up = np.zeros(len(points) - 1 if len(points) > 1 else 0, dtype=bool)
    end = 0
    for part in parts[:-1]:
        end += len(part)
        pen_up[end - 1] = True  # the jump from this stroke's last point to the next one's first
    times = np.arange(len(points), dtype=np.float64)
    if all(part.shape[1] > 2 for part in parts):
        clock = np.concatenate([part[:, 2] for part in parts])
        if len(pen_up) and np.all(np.diff(clock)[~pen_up] > 0):
            times = clock
    return points, times, pen_up


def _relative_speed(length: np.ndarray, times: np.ndarray, pen_up: np.ndarray) -> np.ndarray:
    """Per segment: log(its speed / the mean speed with the pen down), clipped; 0 in the air."""
    elapsed = np.diff(times)
    down = ~pen_up
    if not down.any() or length[down].sum() <= 1e-9:
        return np.zeros(len(length))
    mean = length[down].sum() / elapsed[down].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.log(np.maximum(length / elapsed / mean, 1e-12))
    return np.where(down, np.clip(speed, -_SPEED_LIMIT, _SPEED_LIMIT), 0.0)


def _resample(points: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """POINTS points evenly spaced along the path, and the segment each lies on."""
    if len(points) == 1:
        return np.repeat(points, POINTS, axis=0), np.zeros(POINTS, dtype=int)
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    if along[-1] <= 1e-9:
        return np.repeat(points[:1], POINTS, axis=0), np.zeros(POINTS, dtype=int)
    targets = np.linspace(0.0, along[-1], POINTS)
    resampled = np.stack([np.interp(targets, along, points[:, 0]), np.interp(targets, along, points[:, 1])], axis=1)
    segment = np.clip(np.searchsorted(along, targets, side="right") - 1, 0, len(points) - 2)
    return resampled, segment
