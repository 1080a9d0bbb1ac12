"""The handwritten signature: a probe against a user's enrolled signatures (numpy and dtaidistance).

A signature is the strokes a client recorded (hwotp.strokes: x, y in pixels,
t_ms, pressure, and a pen's azimuth and altitude; 0 where unknown), resampled
in time to 100 Hz. Three views of a probe against the user's references:

  shape     its mean multivariate DTW distance (Sakoe-Chiba window; the sum
            of the Euclidean distances of aligned points, not normalised by
            length: a longer, slower probe costs more) over local features
            (position centred and scaled by its spread, velocity, direction,
            pressure; each z-normalised within the signature) to the
            references, over the references' mean mutual distance (a per-user
            normalisation)
  duration  |log| of its duration over the references' mean (forgers draw slowly)
  global    a per-user statistical model of global features (speeds,
            accelerations, proportions, pen lifts, pressure, direction
            histogram, the pen's azimuth and altitude where the device reports
            them): the mean |z| of the probe's, with each feature's spread
            from the references floored by a share of the population's

A logistic model over their logarithms, fitted on SVC2004 users
(training.evaluate_signatures), fuses them into one calibrated score (log
odds), judged against one global threshold. A probe almost identical to a
reference or an accepted signature (its nearest DTW distance under
`replay_ratio` of the references' mutual one) is a replay: nobody signs twice
identically.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dtaidistance import dtw_ndim

from hwotp.errors import InvalidInput

REFERENCES = 5
PARTS = ("shape", "duration", "global")
MODEL_FILE = "signature.json"
MIN_POINTS = 10
# Signatures are resampled to 100 Hz, the rate of the data it was fitted on; without a clock
# (t_ms all 0) points are taken as sampled at that rate.
_STEP_MS = 10.0


@dataclass(frozen=True)
class Signature:
    """What the verifier keeps of one signature: its local feature sequence, duration and global features."""

    sequence: np.ndarray  # (n, 7) float64
    duration_ms: float
    globals: np.ndarray  # (G,) float64


def problem(strokes: list[np.ndarray]) -> str | None:
    """Why strokes (arrays whose first two columns are x, y) cannot be a signature; None if they can."""
    if not strokes:
        return "a signature must come as strokes"
    xy = np.concatenate([np.asarray(s)[:, :2] for s in strokes])
    if len(xy) < MIN_POINTS:
        return f"a signature needs at least {MIN_POINTS} points; it has {len(xy)}"
    if np.ptp(xy, axis=0).max() < 1:
        return "the signature holds no ink (every point within one pixel)"
    return None


COLUMNS = 6  # x, y, t_ms, pressure, azimuth, altitude


def _resampled(stroke: np.ndarray) -> np.ndarray:
    """A stroke at one point every _STEP_MS (devices sample at 60 to 240 Hz, and a DTW sum
    counts points), its first and last points kept."""
    t = stroke[:, 2]
    if len(stroke) < 2 or t[-1] <= t[0]:
        return stroke
    at = np.append(np.arange(t[0], t[-1], _STEP_MS), t[-1])
    keep = np.r_[True, np.diff(t) > 0]  # np.interp needs increasing times
    return np.stack([np.interp(at, t[keep], column[keep]) for column in stroke.T], axis=1)


def _points(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 6) x, y, t_ms, pressure, azimuth, altitude of every point in writing order (columns a
    stroke lacks are 0), and each stroke's start index; with timing, resampled in time."""
    why = problem(strokes)
    if why:
        raise InvalidInput(why)
    padded = []
    for stroke in strokes:
        stroke = np.asarray(stroke, dtype=np.float64)
        full = np.zeros((len(stroke), COLUMNS))
        full[:, :min(COLUMNS, stroke.shape[1])] = stroke[:, :COLUMNS]
        padded.append(full)
    timed = np.ptp(np.concatenate([s[:, 2] for s in padded])) > 0
    if timed:
        padded = [_resampled(s) for s in padded]
    points = np.concatenate(padded)
    if not timed:
        points[:, 2] = np.arange(len(points)) * _STEP_MS
    starts = np.cumsum([0] + [len(s) for s in padded[:-1]])
    return points, starts


def _local(points: np.ndarray) -> np.ndarray:
    x, y, pressure = points[:, 0] - points[:, 0].mean(), points[:, 1] - points[:, 1].mean(), points[:, 3]
    spread = np.std(np.concatenate([x, y])) + 1e-9
    x, y = x / spread, y / spread
    dx, dy = np.gradient(x), np.gradient(y)
    angle = np.arctan2(dy, dx)
    local = np.stack([x, y, dx, dy, np.cos(angle), np.sin(angle), pressure], axis=1)
    return np.ascontiguousarray((local - local.mean(axis=0)) / (local.std(axis=0) + 1e-9))


def _globals(points: np.ndarray, starts: np.ndarray) -> np.ndarray:
    x, y, t, pressure, azimuth, altitude = points.T
    height, width = np.ptp(y) + 1, np.ptp(x) + 1
    within = np.ones(len(points) - 1, dtype=bool)
    within[starts[1:] - 1] = False  # the jumps between strokes are not pen movement
    dx, dy, dt = np.diff(x)[within], np.diff(y)[within], np.maximum(np.diff(t)[within], 1.0)
    if not len(dx):
        dx, dy, dt = np.zeros(1), np.zeros(1), np.ones(1)
    speed = np.hypot(dx, dy) / dt
    moving = speed > 0
    direction = np.histogram(np.arctan2(dy, dx)[moving], bins=8, range=(-np.pi, np.pi))[0] / max(1, moving.sum())
    acceleration = np.abs(np.diff(speed)) if len(speed) > 1 else np.zeros(1)
    duration = t[-1] - t[0] + _STEP_MS
    writing = float(np.sum(dt)) / duration
    return np.array([
        np.log(duration), np.log(len(points)), writing, len(starts) - 1, np.log(width / height),
        np.log(np.hypot(dx, dy).sum() + 1) - np.log(height), np.log(speed.mean() / height + 1e-6),
        np.log(speed.max() / height + 1e-6), speed.std() / (speed.mean() + 1e-9),
        np.log(acceleration.mean() / height + 1e-6), pressure.mean(), pressure.std(), pressure.max(),
        np.argmax(speed) / len(speed), np.mean(dx > 0), np.mean(dy > 0), *direction,
        azimuth.mean(), azimuth.std(), altitude.mean(), altitude.std()])


def signature_of(strokes: list[np.ndarray]) -> Signature:
    """Strokes as (n, 4) arrays of x, y, t_ms, pressure, or (n, 6) with azimuth and altitude ->
    the signature's features (InvalidInput when they cannot be a signature)."""
    points, starts = _points(strokes)
    return Signature(_local(points), float(points[-1, 2] - points[0, 2] + _STEP_MS), _globals(points, starts))


def fusion_inputs(parts: np.ndarray) -> np.ndarray:
    """What the logistic fusion weighs: the parts' logarithms (a duration like the references'
    is 0: offset)."""
    return np.log(np.asarray(parts) + np.array([1e-6, 0.01, 1e-6]))


@dataclass(frozen=True)
class SignatureModel:
    """The fitted settings: DTW window, the global features' population spread and floor,
    the fusion's weights and bias, the global threshold and the replay ratio."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    global_spread: tuple[float, ...]
    floor: float = 0.5
    window: float = 0.25
    replay_ratio: float = 0.05
    version: str = "signature-dtw"

    @classmethod
    def load(cls, directory: Path) -> "SignatureModel":
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run python -m training.evaluate_signatures --fit-users 1-30")
        entry = json.loads(path.read_text())
        return cls(tuple(entry["weights"]), entry["bias"], entry["threshold"], tuple(entry["global_spread"]),
                   entry["floor"], entry["window"], entry["replay_ratio"], entry["version"])

    def save(self, directory: Path, **extra) -> Path:
        path = Path(directory) / MODEL_FILE
        fields = dict(self.__dict__, weights=list(self.weights), global_spread=list(self.global_spread))
        path.write_text(json.dumps({**fields, **extra}, indent=2) + "\n")
        return path

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        band = max(int(self.window * max(len(a), len(b))), abs(len(a) - len(b)) + 1)
        return dtw_ndim.distance_fast(a, b, window=band, inner_dist="euclidean")

    def enrol(self, references: list[Signature]) -> "Enrolled":
        if len(references) < 2:
            raise InvalidInput(f"a signature enrolment needs at least 2 signatures; {len(references)} given")
        mutual = np.array([self.distance(a.sequence, b.sequence) for a, b in itertools.combinations(references, 2)])
        return Enrolled(self, list(references), max(float(mutual.mean()), 1e-9), mutual)

    def fuse(self, parts: np.ndarray) -> np.ndarray:
        """(n, 3) parts -> calibrated scores (log odds that the enrolled user signed)."""
        return fusion_inputs(parts) @ np.asarray(self.weights) + self.bias


@dataclass(frozen=True)
class Enrolled:
    model: SignatureModel
    references: list[Signature]
    spread: float  # mean DTW distance among the references
    mutual: np.ndarray  # the DTW distance of every pair of references

    def _to_references(self, probe: Signature) -> np.ndarray:
        return np.array([self.model.distance(probe.sequence, r.sequence) for r in self.references])

    def parts(self, probe: Signature, to_references: np.ndarray | None = None) -> np.ndarray:
        """(shape, duration, global) of a probe: each larger the less it is like the references.
        to_references: its DTW distances to them, when the caller has them."""
        to_references = self._to_references(probe) if to_references is None else to_references
        shape = float(np.mean(to_references)) / self.spread
        duration = abs(float(np.log(probe.duration_ms / np.mean([r.duration_ms for r in self.references]))))
        known = np.array([r.globals for r in self.references])
        spread = np.sqrt(known.var(axis=0) + (self.model.floor * np.asarray(self.model.global_spread)) ** 2)
        unlike = float(np.mean(np.abs((probe.globals - known.mean(axis=0)) / spread)))
        return np.array([shape, duration, unlike])

    def score(self, probe: Signature) -> float:
        return self.judge(probe)[0]

    def judge(self, probe: Signature, earlier: list[Signature] = ()) -> tuple[float, bool]:
        """(its calibrated score, whether it is almost identical to a reference or to an earlier
        accepted signature: a replay), its distances to the references computed once."""
        to_references = self._to_references(probe)
        score = float(self.model.fuse(self.parts(probe, to_references)[None])[0])
        nearest = min([*to_references, *(self.model.distance(probe.sequence, s.sequence) for s in earlier)])
        return score, nearest / self.spread < self.model.replay_ratio

    def replayed(self, probe: Signature, earlier: list[Signature] = ()) -> bool:
        return self.judge(probe, earlier)[1]

    def has_twins(self) -> bool:
        """Two references almost identical: one was copied, not signed anew."""
        return bool((self.mutual / self.spread < self.model.replay_ratio).any())


def to_bytes(signature: Signature) -> bytes:
    """Compact storage: float32 sequence, duration and globals."""
    header = np.array([len(signature.sequence), signature.sequence.shape[1], len(signature.globals)], dtype="<u4")
    body = np.concatenate([[signature.duration_ms], signature.globals, signature.sequence.ravel()]).astype("<f4")
    return header.tobytes() + body.tobytes()


def from_bytes(data: bytes) -> Signature:
    n, width, count = np.frombuffer(data[:12], dtype="<u4")
    body = np.frombuffer(data[12:], dtype="<f4").astype(np.float64)
    return Signature(np.ascontiguousarray(body[1 + count:].reshape(n, width)), float(body[0]), body[1:1 + count])
