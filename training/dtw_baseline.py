"""The online baseline: dynamic time warping between pen paths (hwotp.trajectory features).

A probe's raw score against a writer is minus the multivariate DTW distance
(dtaidistance, Sakoe-Chiba window) between the paths' shape channels (position,
direction, turning, pen-up: the plain baseline, without the speed channel) and
that writer's enrolment samples of the
same digit (the nearest, when there are several), z-normalised against a
cohort of training writers as the embeddings' scores are. Kept beside the
learned online embedding as the figure it has to beat; evaluation only.
"""

from __future__ import annotations

import numpy as np
from dtaidistance import dtw_ndim
from tqdm import tqdm

from hwotp import scoring
from hwotp.trajectory import SPEED_CHANNEL
from training import protocol

WINDOW = 8  # points of the resampled path a match may shift
COHORT_TOP = 50


def _distances(probes: np.ndarray, digits: np.ndarray, enrolled: np.ndarray, index: np.ndarray,
               desc: str) -> np.ndarray:
    """probes (P, N, C); index (T, 10, k) rows of `enrolled` -> (P, T) nearest same-digit distances."""
    out = np.empty((len(probes), len(index)))
    for p in tqdm(range(len(probes)), desc=desc, leave=False, mininterval=2):
        for t, rows in enumerate(index[:, digits[p]]):
            out[p, t] = min(dtw_ndim.distance_fast(probes[p], enrolled[row], window=WINDOW) for row in rows)
    return out


def score_matrix(features: np.ndarray, enrolment: protocol.Enrolment, cohort_features: np.ndarray,
                 cohort: protocol.Enrolment, cohort_exclude: np.ndarray | None = None) -> np.ndarray:
    """(P, T) normalised DTW scores of every probe against every enrolled writer.
    features: (S, C, N) path features of the samples `enrolment` indexes; cohort_features
    the same for the cohort's samples; cohort_exclude: (P, J) entries not to use."""
    paths = np.ascontiguousarray(features[:, :SPEED_CHANNEL].transpose(0, 2, 1), dtype=np.float64)
    cohort_paths = np.ascontiguousarray(cohort_features[:, :SPEED_CHANNEL].transpose(0, 2, 1), dtype=np.float64)
    probes, digits = paths[enrolment.probe_index], enrolment.probe_digit
    raw = -_distances(probes, digits, paths, enrolment.enrol_index, "DTW: enrolled writers")
    against = -_distances(probes, digits, cohort_paths, cohort.enrol_index, "DTW: cohort")
    if cohort_exclude is not None:
        against = np.where(cohort_exclude, -np.inf, against)
    return scoring.cohort_normalised(raw, against, min(COHORT_TOP, against.shape[1]))
