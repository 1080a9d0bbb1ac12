"""The verification protocol: enrolment and probes, attempts built from real digits, error rates.

For each writer and digit the first `enroll` samples (in file order) are the
enrolment and the rest are probes. A genuine attempt of length n is n probes of
n distinct digits by the enrolled writer; an impostor attempt is n probes of
the same digits by another writer, scored against the first writer's
enrolment. Nothing is derived by assuming independence between digits.
numpy only: evaluation runs without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwotp import scoring


@dataclass(frozen=True)
class Enrolment:
    writers: np.ndarray  # (T,) writer keys that could be enrolled
    enrol_index: np.ndarray  # (T, 10, k) sample indices of each writer's enrolment
    probe_index: np.ndarray  # (P,) sample indices of probes
    probe_owner: np.ndarray  # (P,) position in `writers` of each probe's writer
    probe_digit: np.ndarray  # (P,)
    skipped_writers: int  # writers with fewer than k samples of some digit

    @property
    def depth(self) -> int:
        """Enrolled samples per digit (which calibration scores these writers)."""
        return self.enrol_index.shape[2]


def enrol(digits: np.ndarray, writers: np.ndarray, k: int) -> Enrolment:
    kept, enrol_rows, probes, owners = [], [], [], []
    skipped = 0
    for key in np.unique(writers):
        rows = np.flatnonzero(writers == key)
        per_digit = [rows[digits[rows] == d] for d in range(10)]
        if min(len(r) for r in per_digit) < k:
            skipped += 1
            continue
        owner = len(kept)
        kept.append(key)
        enrol_rows.append([r[:k] for r in per_digit])
        for r in per_digit:
            probes.extend(r[k:])
            owners.extend([owner] * len(r[k:]))
    probe_index = np.asarray(probes, dtype=np.int64)
    return Enrolment(
        writers=np.asarray(kept, dtype=np.int64),
        enrol_index=np.asarray(enrol_rows, dtype=np.int64).reshape(len(kept), 10, k),
        probe_index=probe_index,
        probe_owner=np.asarray(owners, dtype=np.int64),
        probe_digit=digits[probe_index],
        skipped_writers=skipped,
    )


def templates_of(embeddings: np.ndarray, enrolment: Enrolment) -> np.ndarray:
    """(T, 10, D) per-digit mean embeddings of every enrolled writer (as cohort templates are;
    score_matrix scores cosine probes against their direction, as the verifier does)."""
    return embeddings[enrolment.enrol_index].mean(axis=2).astype(np.float32)


def score_matrix(
    embeddings: np.ndarray,
    enrolment: Enrolment,
    cohort: np.ndarray | None,
    config: scoring.ScoringConfig,
    cohort_writers: np.ndarray | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """(P, T): every probe scored against every enrolled writer's template.

    cohort_writers names the writer of each cohort template, so that a probe's
    own writer never serves as its cohort (which would flatter impostors).
    """
    templates = templates_of(embeddings, enrolment)
    if config.metric == "cosine":
        templates = scoring.unit_length(templates)
    scorer = scoring.Scorer(cohort, config)  # the cohort's views once, not once per chunk
    out = np.empty((len(enrolment.probe_index), len(enrolment.writers)), dtype=np.float32)
    for start in range(0, len(out), chunk):
        part = slice(start, start + chunk)
        rows = enrolment.probe_index[part]
        exclude = None
        if cohort_writers is not None:
            exclude = enrolment.writers[enrolment.probe_owner[part]][:, None] == cohort_writers[None, :]
        out[part] = scorer(embeddings[rows], enrolment.probe_digit[part], templates, exclude)
    return out


@dataclass(frozen=True)
class Attempts:
    """Attempts of one length: per-digit scores and the probes they used."""

    genuine: np.ndarray  # (A, n) per-digit scores
    impostor: np.ndarray  # (B, n)
    genuine_probes: np.ndarray  # (A, n) probe positions
    impostor_probes: np.ndarray  # (B, n)
    skipped_writers: int
    genuine_targets: np.ndarray  # (A,) the enrolled writer each attempt claims to be
    impostor_targets: np.ndarray  # (B,)
    impostor_writers: np.ndarray  # (B,) the enrolled writer who really wrote each impostor attempt


def build_attempts(enrolment: Enrolment, scores: np.ndarray, length: int, per_writer: int, seed: int) -> Attempts:
    rng = np.random.default_rng(seed)
    by_owner_digit: dict[tuple[int, int], np.ndarray] = {}
    for position, (owner, digit) in enumerate(zip(enrolment.probe_owner, enrolment.probe_digit)):
        by_owner_digit.setdefault((int(owner), int(digit)), []).append(position)
    probes_of = {key: np.asarray(v) for key, v in by_owner_digit.items()}
    owners = len(enrolment.writers)
    digits_of = [np.array([d for d in range(10) if (o, d) in probes_of]) for o in range(owners)]
    genuine, impostor, genuine_targets, impostor_targets, skipped = [], [], [], [], 0
    for target in range(owners):
        if len(digits_of[target]) < length:
            skipped += 1
            continue
        for _ in range(per_writer):
            chosen = rng.choice(digits_of[target], size=length, replace=False)
            genuine.append([rng.choice(probes_of[(target, d)]) for d in chosen])
            genuine_targets.append(target)
            # the impostor writes the same digits, in their own hand
            for _ in range(100):
                other = int(rng.integers(owners))
                if other != target and all((other, int(d)) in probes_of for d in chosen):
                    impostor.append([rng.choice(probes_of[(other, d)]) for d in chosen])
                    impostor_targets.append(target)
                    break
    genuine_probes = np.asarray(genuine, dtype=np.int64).reshape(-1, length)
    impostor_probes = np.asarray(impostor, dtype=np.int64).reshape(-1, length)
    genuine_targets = np.asarray(genuine_targets, dtype=np.int64)
    impostor_targets = np.asarray(impostor_targets, dtype=np.int64)
    return Attempts(
        genuine=scores[genuine_probes, genuine_targets[:, None]],
        impostor=scores[impostor_probes, impostor_targets[:, None]],
        genuine_probes=genuine_probes,
        impostor_probes=impostor_probes,
        skipped_writers=skipped,
        genuine_targets=genuine_targets,
        impostor_targets=impostor_targets,
        impostor_writers=enrolment.probe_owner[impostor_probes[:, 0]],
    )


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    thresholds, far, frr = _rates(genuine, impostor)
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def far_at_frr(genuine: np.ndarray, impostor: np.ndarray, frr_target: float) -> float:
    _, far, frr = _rates(genuine, impostor)
    return float(far[frr <= frr_target].min())


def frr_at_far(genuine: np.ndarray, impostor: np.ndarray, far_target: float) -> float:
    _, far, frr = _rates(genuine, impostor)
    return float(frr[far <= far_target].min())


def threshold_at_far(impostor: np.ndarray, far_target: float) -> float:
    """The lowest threshold (accept when score > threshold) whose FAR is at most the target."""
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(far_target * len(ordered)))
    return float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1])


def writer_draws(writers: int, resamples: int, seed: int = 0):
    """Writer-bootstrap resamples: per resample, how often each of `writers` writers was drawn
    when as many were drawn again with replacement (float counts, to weigh attempts by)."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield np.bincount(rng.integers(int(writers), size=int(writers)), minlength=int(writers)).astype(float)


def threshold_holding_far(impostor: np.ndarray, targets: np.ndarray, impostors: np.ndarray, far_target: float,
                          confidence: float, resamples: int = 400, seed: int = 0) -> float:
    """The threshold that holds the FAR target on a share `confidence` of writer-bootstrap
    resamples of the impostor attempts (accept when score > threshold).

    A few dozen validation writers are a small population, and a look-alike pair among
    them moves the FAR a threshold gives: threshold_at_far fitted on them holds its target
    on new writers about as often as not. Each resample draws the writers again with
    replacement and weighs every impostor attempt by how often its claimed writer
    (`targets`) and its real writer (`impostors`) were drawn; its threshold is the lowest
    whose weighted FAR is at most the target, and the answer is the `confidence` quantile
    of those thresholds (among many writers alike, confidence 0.5 gives about
    threshold_at_far)."""
    order = np.argsort(impostor, kind="stable")[::-1]
    ordered, targets, impostors = impostor[order], targets[order], impostors[order]
    found = np.full(resamples, np.nan)  # a draw of one writer over and over has no impostor: it says nothing
    for r, drawn in enumerate(writer_draws(max(targets.max(), impostors.max()) + 1, resamples, seed)):
        above = np.cumsum(drawn[targets] * drawn[impostors])
        if above[-1] > 0:
            allowed = int(np.searchsorted(above, far_target * above[-1], side="right"))
            found[r] = ordered[min(allowed, len(ordered) - 1)]
    return float(np.nanquantile(found, confidence))


def far_interval(accepted: np.ndarray, targets: np.ndarray, impostors: np.ndarray, coverage: float = 0.9,
                 resamples: int = 400, seed: int = 0) -> tuple[float, float]:
    """A writer-bootstrap interval of a false-accept rate: accepted (B,) bool, each impostor attempt
    weighed by how often its claimed writer (`targets`) times its real writer (`impostors`) was
    drawn; the central `coverage` of the resamples' rates."""
    found = []
    for drawn in writer_draws(max(targets.max(), impostors.max()) + 1, resamples, seed):
        weight = drawn[targets] * drawn[impostors]
        if weight.sum() > 0:
            found.append(float((weight * accepted).sum() / weight.sum()))
    low, high = np.quantile(found, [(1 - coverage) / 2, (1 + coverage) / 2])
    return float(low), float(high)


def eer_interval(genuine: np.ndarray, impostor: np.ndarray, genuine_writers: np.ndarray,
                 impostor_targets: np.ndarray, impostor_writers: np.ndarray, coverage: float = 0.9,
                 resamples: int = 400, seed: int = 0) -> tuple[float, float]:
    """A writer-bootstrap interval of the EER: how far the figure could move on another draw of
    as many writers. Attempts of one writer are not independent (a look-alike pair makes many
    errors at once), so the writers are drawn again with replacement and each genuine attempt
    weighs as often as its writer was drawn, each impostor attempt as often as its claimed
    writer times its real writer; the interval holds the central `coverage` of the
    resamples' EERs."""
    scores = np.concatenate([genuine, impostor])
    order = np.argsort(scores, kind="stable")
    is_genuine = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])[order]
    writers = max(genuine_writers.max(), impostor_targets.max(), impostor_writers.max()) + 1
    found = np.full(resamples, np.nan)
    for r, drawn in enumerate(writer_draws(writers, resamples, seed)):
        weight = np.concatenate([drawn[genuine_writers], drawn[impostor_targets] * drawn[impostor_writers]])[order]
        genuine_weight, impostor_weight = np.where(is_genuine, weight, 0.0), np.where(is_genuine, 0.0, weight)
        if genuine_weight.sum() == 0 or impostor_weight.sum() == 0:
            continue  # a draw without a genuine or without an impostor attempt says nothing
        # accepting above each score in turn: the rejected genuine and the accepted impostor share
        frr = np.cumsum(genuine_weight) / genuine_weight.sum()
        far = 1 - np.cumsum(impostor_weight) / impostor_weight.sum()
        i = int(np.argmin(np.abs(far - frr)))
        found[r] = (far[i] + frr[i]) / 2
    low, high = np.nanquantile(found, [(1 - coverage) / 2, (1 + coverage) / 2])
    return float(low), float(high)


def det_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, far, frr = _rates(genuine, impostor)
    return far, frr


def _rates(genuine: np.ndarray, impostor: np.ndarray):
    """FAR and FRR for every threshold t, accepting when score > t."""
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([genuine, impostor]))])
    genuine_sorted, impostor_sorted = np.sort(genuine), np.sort(impostor)
    frr = np.searchsorted(genuine_sorted, thresholds, side="right") / len(genuine)
    far = 1 - np.searchsorted(impostor_sorted, thresholds, side="right") / len(impostor)
    return thresholds, far, frr
