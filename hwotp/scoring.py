"""Writer-verification scores: pure numpy, shared by the verifier service and evaluation.

A user's template is one vector per digit: the mean of the unit-length
embeddings of that digit's enrolment samples (so p . template[d] is the mean
cosine similarity of a probe p with those samples). A probe's raw score mixes
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
    """Enrolment embeddings (n, D) with their digits -> (10, D) per-digit means."""
    templates = np.zeros((10, embeddings.shape[1]), dtype=np.float32)
    for digit in range(10):
        chosen = embeddings[digits == digit]
        if len(chosen) == 0:
            raise ValueError(f"no enrolment sample of digit {digit}")
        templates[digit] = chosen.mean(axis=0)
    return templates


def most_typical(embeddings: np.ndarray) -> int:
    """The sample closest to the others (highest mean cosine similarity to them)."""
    if len(embeddings) < 3:
        return 0
    similarity = embeddings @ embeddings.T
    return int(((similarity.sum(axis=1) - np.diag(similarity)) / (len(embeddings) - 1)).argmax())


def raw_scores(probes: np.ndarray, digits: np.ndarray, templates: np.ndarray, config: ScoringConfig) -> np.ndarray:
    """probes (P, D), their digits (P,), templates (T, 10, D) -> (P, T) raw scores."""
    if config.metric == "euclidean":
        same = templates[:, digits, :].transpose(1, 0, 2)  # (P, T, D)
        return -np.linalg.norm(probes[:, None, :] - same, axis=2)
    count, classes, dim = templates.shape
    # Every probe against every template of every digit in one BLAS product;
    # the verifier runs this against the whole cohort on each request.
    every = (probes @ templates.reshape(count * classes, dim).T).reshape(len(probes), count, classes)
    own = every[np.arange(len(probes)), :, digits]  # (P, T)
    if config.cross_digit_weight == 0:
        return own
    others = (every.sum(axis=2) - own) / (classes - 1)
    return (1 - config.cross_digit_weight) * own + config.cross_digit_weight * others


def scores(
    probes: np.ndarray,
    digits: np.ndarray,
    templates: np.ndarray,
    cohort: np.ndarray | None,
    config: ScoringConfig,
    cohort_exclude: np.ndarray | None = None,
) -> np.ndarray:
    """(P, T) normalised scores; higher means more likely the template's writer.

    cohort: (J, 10, D) templates of other writers. cohort_exclude: optional
    (P, J) boolean mask of cohort entries not to use for a probe (its own writer).
    """
    normalised = raw = raw_scores(probes, digits, templates, config)
    if config.cohort_top > 0 and cohort is not None:
        against_cohort = raw_scores(probes, digits, cohort, config)
        if cohort_exclude is not None:
            against_cohort = np.where(cohort_exclude, -np.inf, against_cohort)
        top = np.partition(against_cohort, -config.cohort_top, axis=1)[:, -config.cohort_top :]
        normalised = (raw - top.mean(axis=1, keepdims=True)) / (top.std(axis=1, keepdims=True) + 1e-6)
    if config.digit_slope is None:
        return normalised
    slope = np.asarray(config.digit_slope, dtype=np.float32)[digits][:, None]
    midpoint = np.asarray(config.digit_midpoint, dtype=np.float32)[digits][:, None]
    return slope * (normalised - midpoint)


def writer_check(scores: np.ndarray, policy: str, threshold: float, margin: float) -> tuple[bool, bool]:
    """The writer decision on one attempt's calibrated scores: (accepted, near miss).
    all_pass: every digit above the threshold; fused_mean: their mean above it. A near
    miss is a rejection whose failing digits (or mean) all lie within `margin` below it."""
    if policy == "all_pass":
        passed = scores > threshold
        accepted, near = bool(passed.all()), bool((scores[~passed] > threshold - margin).all())
    else:
        mean = scores.mean()
        accepted, near = bool(mean > threshold), bool(mean > threshold - margin)
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
