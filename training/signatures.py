"""Online signatures in the SVC2004 format, and the DTW verifier the signature factor starts from.

A file `U{u}S{s}.TXT` holds one signature: the number of points, then one row
per point, `X Y TIMESTAMP BUTTON AZIMUTH ALTITUDE PRESSURE` (100 Hz). Of each
user, S1-S20 are genuine and S21-S40 skilled forgeries.

The verifier: each signature becomes a sequence of local features (position
centred and scaled by its spread, velocity, direction, pressure), each feature
z-normalised within the signature; a probe's distance to a reference is their
multivariate DTW distance (Sakoe-Chiba window) per aligned point; its score
against a user is minus its nearest reference distance over the mean distance
among the user's references (a per-user normalisation), minus a penalty for a
duration unlike the references' (forgers draw slowly). One global threshold.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dtaidistance import dtw_ndim

GENUINE = range(1, 21)
FORGERIES = range(21, 41)
_NAME = re.compile(r"U(\d+)S(\d+)\.TXT$", re.IGNORECASE)


def read_signatures(source: Path) -> dict[tuple[int, int], np.ndarray]:
    """{(user, signature): (n, 7) rows} of every U{u}S{s}.TXT in a folder or a zip archive."""
    source = Path(source)
    if source.suffix.lower() == ".zip":
        with zipfile.ZipFile(source) as archive:
            files = [(name, archive.read(name)) for name in archive.namelist()]
    else:
        files = [(path.name, path.read_bytes()) for path in sorted(source.iterdir()) if path.is_file()]
    out = {}
    for name, raw in files:
        match = _NAME.search(name)
        if match:
            rows = np.loadtxt(io.BytesIO(raw), skiprows=1, ndmin=2)
            if rows.shape[1] < 7 or len(rows) < 2:
                raise ValueError(f"{name}: not an SVC2004 signature (a count, then rows of 7 numbers)")
            out[(int(match.group(1)), int(match.group(2)))] = rows
    if not out:
        raise ValueError(f"no U{{u}}S{{s}}.TXT signatures in {source}")
    return out


def features(rows: np.ndarray) -> np.ndarray:
    """(n, 7) SVC2004 rows -> (n, 7) float64 local features."""
    x, y, pressure = rows[:, 0] - rows[:, 0].mean(), rows[:, 1] - rows[:, 1].mean(), rows[:, 6]
    spread = np.std(np.concatenate([x, y])) + 1e-9
    x, y = x / spread, y / spread
    dx, dy = np.gradient(x), np.gradient(y)
    angle = np.arctan2(dy, dx)
    local = np.stack([x, y, dx, dy, np.cos(angle), np.sin(angle), pressure], axis=1)
    return np.ascontiguousarray((local - local.mean(axis=0)) / (local.std(axis=0) + 1e-9))


@dataclass(frozen=True)
class DtwVerifier:
    window: float = 0.1  # Sakoe-Chiba window, a share of the longer signature
    duration_weight: float = 1.0  # penalty per unit of |log(duration / the references' mean)|

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        band = max(int(self.window * max(len(a), len(b))), abs(len(a) - len(b)) + 1)
        return dtw_ndim.distance_fast(a, b, window=band) / (len(a) + len(b))

    def enrol(self, references: list[np.ndarray]) -> "Enrolled":
        spread = np.mean([self.distance(a, b) for a, b in itertools.combinations(references, 2)])
        return Enrolled(self, references, float(spread), float(np.mean([len(r) for r in references])))


@dataclass(frozen=True)
class Enrolled:
    verifier: DtwVerifier
    references: list[np.ndarray]
    spread: float  # mean DTW distance among the references
    length: float  # their mean number of points (duration at 100 Hz)

    def parts(self, probe: np.ndarray) -> tuple[float, float]:
        """(the nearest reference's distance over the references' spread, |log duration ratio|)."""
        nearest = min(self.verifier.distance(probe, r) for r in self.references)
        return nearest / self.spread, abs(float(np.log(len(probe) / self.length)))

    def score(self, probe: np.ndarray) -> float:
        """Higher: more likely the enrolled user's."""
        shape, duration = self.parts(probe)
        return -shape - self.verifier.duration_weight * duration
