"""Writer-verification scores: pure numpy, shared by the verifier service and evaluation.

A user's template is one vector per digit: the direction of the mean of the
unit-length embeddings of that digit's enrolment samples (so p . template[d]
is the cosine of a probe p with that mean). The mean itself would shrink with
the spread of the user's samples, and a consistent writer would then score
lower against more samples; the direction does not. (Cohort templates, which
only supply a probe's normalisation statistics, are plain means.) A probe's raw score mixes
its similarity to the template of its own digit with that to the user's other
digits (style carries across digits), and is then z-normalised against a
cohort of training writers' templates (the adaptive top-N cohort of the probe),
and finally calibrated per digit class into a linear log-likelihood ratio
(slope * (score - midpoint), fitted on validation writers), so that one
threshold means the same thing for every digit: a "1" carries less style than
an "8", and the all-pass rule would otherwise fail on it first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class ScoringConfig:
    metric: str = "cosine"  # "cosine" or "euclidean" (the paper's baseline)
    cross_digit_weight: float = 0.0
    cohort_top: int = 0  # 0: no cohort normalisation
    digit_slope: tuple[float, ...] | None = None  # per digit class; None: no calibration
    digit_midpoint: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def make_templates(embeddings: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """Enrolment embeddings (n, D) with their digits -> (10, D) per-digit means, unit length."""
    templates = np.zeros((10, embeddings.shape[1]), dtype=np.float32)
    for digit in range(10):
        chosen = embeddings[digits == digit]
        if len(chosen) == 0:
            raise ValueError(f"no enrolment sample of digit {digit}")
        templates[digit] = chosen.mean(axis=0)
    return unit_length(templates)


def enrolment_depth(digits: np.ndarray) -> int:
    """How deep an enrolment is: its fewest samples of any digit (which calibration fits it)."""
    return int(np.bincount(np.asarray(digits, dtype=np.int64), minlength=10).min())


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """Vectors (..., D) scaled to unit length along the last axis."""
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def most_typical(embeddings: np.ndarray) -> int:
    """The sample closest to the others (highest mean cosine similarity to them)."""
    if len(embeddings) < 3:
        return 0
    similarity = embeddings @ embeddings.T
    return int(((similarity.sum(axis=1) - np.diag(similarity)) / (len(embeddings) - 1)).argmax())


def by_digit(templates: np.ndarray, config: ScoringConfig) -> np.ndarray:
    """(T, 10, D) templates -> (10, T, D) cosine views: row [d, t] is the one vector whose dot
    product with a probe of digit d is its raw score against template t. The own-digit and
    the cross-digit terms are both linear in the probe, so they fold into one vector, and a
    probe is scored against its own digit's view only, not against all ten digits."""
    classes = templates.shape[1]
    weight = config.cross_digit_weight / (classes - 1)
    views = (1 - config.cross_digit_weight - weight) * templates + weight * templates.sum(axis=1, keepdims=True)
    return np.ascontiguousarray(views.transpose(1, 0, 2))


def raw_scores(probes: np.ndarray, digits: np.ndarray, templates: np.ndarray, config: ScoringConfig,
               views: np.ndarray | None = None) -> np.ndarray:
    """probes (P, D), their digits (P,), templates (T, 10, D) -> (P, T) raw scores.
    views: by_digit(templates, config), when the caller keeps them (cosine only)."""
    if config.metric == "euclidean":
        same = templates[:, digits, :].transpose(1, 0, 2)  # (P, T, D)
        return -np.linalg.norm(probes[:, None, :] - same, axis=2)
    views = by_digit(templates, config) if views is None else views
    digits = np.asarray(digits)
    out = np.empty((len(probes), views.shape[1]), dtype=np.result_type(probes, views))
    for digit in np.unique(digits):
        rows = digits == digit
        out[rows] = probes[rows] @ views[digit].T
    return out


class Scorer:
    """Normalised scores against a fixed cohort, (J, 10, D) templates of other writers, whose
    views are computed once: the verifier scores every request against the same cohort."""

    def __init__(self, cohort: np.ndarray | None, config: ScoringConfig):
        self.config = config
        self.cohort = cohort if config.cohort_top > 0 else None
        self.cohort_views = (by_digit(self.cohort, config)
                             if self.cohort is not None and config.metric == "cosine" else None)
        calibrated = config.digit_slope is not None
        self.slope = np.asarray(config.digit_slope, dtype=np.float32) if calibrated else None
        self.midpoint = np.asarray(config.digit_midpoint, dtype=np.float32) if calibrated else None

    def __call__(self, probes: np.ndarray, digits: np.ndarray, templates: np.ndarray,
                 cohort_exclude: np.ndarray | None = None) -> np.ndarray:
        """(P, T) normalised scores; higher means more likely the template's writer.
        cohort_exclude: optional (P, J) boolean mask of cohort entries not to use for a probe
        (its own writer)."""
        config = self.config
        normalised = raw = raw_scores(probes, digits, templates, config)
        if self.cohort is not None:
            against_cohort = raw_scores(probes, digits, self.cohort, config, self.cohort_views)
            if cohort_exclude is not None:
                against_cohort = np.where(cohort_exclude, -np.inf, against_cohort)
            normalised = cohort_normalised(raw, against_cohort, config.cohort_top)
        if self.slope is None:
            return normalised
        return self.slope[digits][:, None] * (normalised - self.midpoint[digits][:, None])


def cohort_normalised(raw: np.ndarray, against_cohort: np.ndarray, top: int) -> np.ndarray:
    """(P, T) raw scores z-normalised per probe by its `top` highest scores against the cohort (P, J)."""
    nearest = np.partition(against_cohort, -top, axis=1)[:, -top:]
    return (raw - nearest.mean(axis=1, keepdims=True)) / (nearest.std(axis=1, keepdims=True) + 1e-6)


def writer_check(scores: np.ndarray, policy: str, threshold: float, margin: float,
                 floor: float = float("-inf")) -> tuple[bool, bool]:
    """The writer decision on one attempt's calibrated scores: (accepted, near miss).
    all_pass: every digit above the threshold; fused_mean: their mean above it, and no
    digit at or below `floor` (no box may be clearly someone else's writing). A near miss
    is a rejection whose failing digits (or mean) all lie within `margin` below the
    threshold, with no digit under the floor."""
    if policy == "all_pass":
        passed = scores > threshold
        accepted, near = bool(passed.all()), bool((scores[~passed] > threshold - margin).all())
    else:
        mean, above_floor = scores.mean(), bool((scores > floor).all())
        accepted, near = bool(mean > threshold) and above_floor, bool(mean > threshold - margin) and above_floor
    return accepted, not accepted and near


def fit_digit_calibration(scores: np.ndarray, digits: np.ndarray, genuine: np.ndarray,
                          config: ScoringConfig) -> ScoringConfig:
    """Per digit class, the linear log-likelihood ratio of Gaussian genuine and impostor
    scores with a shared variance (monotonic in the score). scores: (P, T); genuine: (P, T) bool."""
    slope, midpoint = [], []
    for digit in range(10):
        rows = digits == digit
        mine, others = scores[rows][genuine[rows]], scores[rows][~genuine[rows]]
        variance = (mine.var() + others.var()) / 2
        slope.append(float((mine.mean() - others.mean()) / variance))
        midpoint.append(float((mine.mean() + others.mean()) / 2))
    return replace(config, digit_slope=tuple(slope), digit_midpoint=tuple(midpoint))
