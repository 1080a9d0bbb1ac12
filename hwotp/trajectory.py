"""The pen's path as the online model sees it: strokes -> a fixed-length feature sequence.

Serving and training both call path_features(), as both call hwotp.ink for the
picture. The strokes are joined into one path in writing order, the jumps
between strokes included as straight "pen up" segments (where the next stroke
starts, relative to the last, is part of a writer's habit), centred on their
bounding box and scaled by its longer side, and resampled to POINTS points
evenly spaced along the path. Each point carries CHANNELS values: position
(x, y), direction of travel (cos, sin), turning since the previous point
(cos, sin of the angle) and whether the pen is up. Timing and pressure are not
used: the training data has none that a touchscreen's would resemble.
Coordinates are any unit, y pointing down.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

POINTS = 64
CHANNELS = 7


def path_features(strokes: Sequence[np.ndarray]) -> np.ndarray:
    """(n_i, 2+) arrays of x, y -> (CHANNELS, POINTS) float32."""
    points, pen_up = _joined(strokes)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    points = (points - centre) / max(float(np.ptp(points, axis=0).max()), 1e-6)
    resampled, up = _resample(points, pen_up)
    step = np.gradient(resampled, axis=0)
    length = np.linalg.norm(step, axis=1, keepdims=True)
    direction = np.divide(step, length, out=np.zeros_like(step), where=length > 1e-9)
    angle = np.arctan2(direction[:, 1], direction[:, 0])
    turning = np.diff(angle, prepend=angle[:1])
    moving = (length[:, 0] > 1e-9) & (np.roll(length[:, 0], 1) > 1e-9)
    features = np.stack([resampled[:, 0], resampled[:, 1], direction[:, 0], direction[:, 1],
                         np.where(moving, np.cos(turning), 1.0), np.where(moving, np.sin(turning), 0.0), up])
    return features.astype(np.float32)


def _joined(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All points in order, and per segment (point i to i+1) whether the pen is up on it."""
    parts = [np.asarray(s, dtype=np.float64)[:, :2] for s in strokes if len(s)]
    if not parts:
        raise ValueError("no ink: the strokes hold no points")
    points = np.concatenate(parts)
    pen_up = np.zeros(len(points) - 1 if len(points) > 1 else 0, dtype=bool)
    end = 0
    for part in parts[:-1]:
        end += len(part)
        pen_up[end - 1] = True  # the jump from this stroke's last point to the next one's first
    return points, pen_up


def _resample(points: np.ndarray, pen_up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(points) == 1:
        return np.repeat(points, POINTS, axis=0), np.zeros(POINTS)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    if along[-1] <= 1e-9:
        return np.repeat(points[:1], POINTS, axis=0), np.zeros(POINTS)
    targets = np.linspace(0.0, along[-1], POINTS)
    resampled = np.stack([np.interp(targets, along, points[:, 0]), np.interp(targets, along, points[:, 1])], axis=1)
    segment = np.clip(np.searchsorted(along, targets, side="right") - 1, 0, len(pen_up) - 1)
    return resampled, pen_up[segment].astype(np.float64)
