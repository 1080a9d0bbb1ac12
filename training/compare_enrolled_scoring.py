"""Score a probe against the enrolled template, or against the nearest enrolled sample? (online embedding)

python -m training.compare_enrolled_scoring [--strokes FILE] [--writers val] [--enroll 3] [--lengths 1,4,6]

A study for the next scoring choice, not what the verifier does: on a stroke
set's writers (validation by default; models/unipen-split.json), enrolled
`--enroll` samples per digit deep, the deployed online model's path embeddings
are scored four ways, each calibrated per digit on the same writers (so the
figures compare the ways, they are no held-out measurement): the unit-mean
template with the deployed scoring (cohort-normalised, as served), and the
nearest enrolled sample of the probe's digit, raw or cohort-normalised, or the
mean of the two nearest. EER of the path alone per challenge length, from the
evaluation's attempts (3 seeds, 200 per writer).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hwotp import scoring
from hwotp.models import ModelBundle
from training import protocol, strokes, unipen

SEEDS = (1, 2, 3)


def nearest_samples(embeddings: np.ndarray, enrolment: protocol.Enrolment, count: int) -> np.ndarray:
    """(P, T): the mean cosine of each probe with the `count` nearest enrolled samples of its
    digit of each enrolled writer."""
    probes = embeddings[enrolment.probe_index]
    enrolled = embeddings[enrolment.enrol_index[:, enrolment.probe_digit]]  # (T, P, k, D)
    cosines = np.einsum("pd,tpkd->ptk", probes, enrolled)
    return np.sort(cosines, axis=2)[:, :, -count:].mean(axis=2)


def calibrated(scores: np.ndarray, enrolment: protocol.Enrolment) -> np.ndarray:
    genuine = enrolment.probe_owner[:, None] == np.arange(len(enrolment.writers))[None, :]
    config = scoring.fit_digit_calibration(scores, enrolment.probe_digit, genuine, scoring.ScoringConfig())
    digit = enrolment.probe_digit
    return np.asarray(config.digit_slope)[digit][:, None] * (scores - np.asarray(config.digit_midpoint)[digit][:, None])


def eers(scores: np.ndarray, enrolment: protocol.Enrolment, lengths: list[int]) -> list[float]:
    return [float(np.mean([protocol.eer(a.genuine.mean(axis=1), a.impostor.mean(axis=1))
                           for a in (protocol.build_attempts(enrolment, scores, n, 200, seed) for seed in SEEDS)]))
            for n in lengths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=Path, default=unipen.STROKE_SET)
    parser.add_argument("--writers", default="val", choices=["val", "test"])
    parser.add_argument("--enroll", type=int, default=3)
    parser.add_argument("--lengths", default="1,4,6")
    args = parser.parse_args()
    strokes.exit_if_missing(args.strokes)
    lengths = [int(n) for n in args.lengths.split(",")]
    bundle = ModelBundle.load()
    samples = strokes.samples_of(strokes.read_stroke_set(args.strokes), args.writers)
    names = sorted({s.writer for s in samples})
    enrolment = protocol.enrol(np.array([s.digit for s in samples]), np.array([names.index(s.writer) for s in samples]),
                               args.enroll)
    embeddings = bundle.online_verifier(strokes.paths_of(samples))
    config, cohort = bundle.online_scoring(args.enroll)
    nearest = nearest_samples(embeddings, enrolment, 1)
    uncalibrated = scoring.ScoringConfig(config.metric, config.cross_digit_weight, config.cohort_top)
    ways = {
        "template, deployed scoring": protocol.score_matrix(embeddings, enrolment, cohort, uncalibrated),
        "nearest sample, raw cosine": nearest,
    }
    # the online cohort, also where this depth's scoring uses none
    templates = bundle.online_cohort()
    against_cohort = np.einsum("pd,jpd->pj", embeddings[enrolment.probe_index], templates[:, enrolment.probe_digit])
    ways["nearest sample, cohort-normalised"] = scoring.cohort_normalised(nearest, against_cohort,
                                                                         config.cohort_top or 50)
    ways["two nearest samples, raw cosine"] = nearest_samples(embeddings, enrolment, min(2, args.enroll))
    print(f"{len(enrolment.writers)} {args.writers} writers, {args.enroll} enrolled per digit; path alone, EER at "
          f"{', '.join(map(str, lengths))} digits")
    for name, scores in ways.items():
        print(f"  {name:36s} " + "  ".join(f"{e * 100:5.2f}%" for e in eers(calibrated(scores, enrolment),
                                                                              enrolment, lengths)), flush=True)


if __name__ == "__main__":
    main()
