"""Calibrate the verifier for boxes written as strokes; add the "strokes" domain to models/models.json.

python -m training.calibrate_strokes [--strokes FILE] [--models DIR]

The verifier's raw scores on rendered strokes sit far above those on scans, so
the scans' cohort and calibration mean nothing there. This fits the strokes'
own: a cohort of the stroke set's training writers, the scoring choice and the
per-digit calibration on its validation writers, and thresholds from their
impostor attempts with one enrolled sample per digit (the fewest a user may
have of a digit) (models/unipen-split.json; the test writers are never read).
The scans' entries stay as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hwotp import scoring
from hwotp.models import META_FILE, STROKES, ModelBundle, models_dir
from hwotp.onnx_model import sha256_of
from training import calibrate, protocol, strokes, unipen

COHORT_ENROL = 2
VALIDATION_ENROL = 1
COHORT_FILE = "cohort-strokes.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=Path, default=unipen.STROKE_SET)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    strokes.exit_if_missing(args.strokes)
    directory = models_dir(args.models)
    bundle = ModelBundle.load(directory)
    parts, _ = strokes.load_parts(args.strokes)
    train, val = parts["train"], parts["val"]
    embedder = bundle.verifier()[0]

    cohort_enrolment = protocol.enrol(train.digits, train.writers, COHORT_ENROL)
    cohort = protocol.templates_of(embedder(train.images[:, None]), cohort_enrolment)
    np.savez(directory / COHORT_FILE, templates=cohort.astype(np.float16), writers=cohort_enrolment.writers)
    cohort = cohort.astype(np.float16).astype(np.float32)  # exactly what the services will load
    print(f"cohort: {len(cohort)} training writers, {COHORT_ENROL} samples per digit", flush=True)

    val_embeddings = embedder(val.images[:, None])
    val_enrolment = protocol.enrol(val.digits, val.writers, VALIDATION_ENROL)
    print(f"choosing the scoring on {len(val_enrolment.writers)} validation writers:", flush=True)
    config, trials = calibrate.choose_scoring(val_embeddings, val_enrolment, cohort)
    val_scores = protocol.score_matrix(val_embeddings, val_enrolment, cohort, config)
    genuine = val_enrolment.probe_owner[:, None] == np.arange(len(val_enrolment.writers))[None, :]
    config = scoring.fit_digit_calibration(val_scores, val_enrolment.probe_digit, genuine, config)
    val_scores = protocol.score_matrix(val_embeddings, val_enrolment, cohort, config)

    meta = json.loads((directory / META_FILE).read_text())
    meta.setdefault("domains", {})[STROKES] = {
        "calibrated_on": f"validation writers of models/unipen-split.json, {VALIDATION_ENROL} enrolled sample per digit",
        "renderer": "hwotp.ink",
        "scoring": config.to_dict(),
        "cohort": {"file": COHORT_FILE, "sha256": sha256_of(directory / COHORT_FILE), "writers": int(len(cohort)),
                   "source": f"stroke-set training writers, {COHORT_ENROL} samples per digit"},
        "validation": {"scoring_search": trials},
        "thresholds": calibrate.thresholds(val_enrolment, val_scores),
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    ModelBundle.load(directory).threshold("all_pass", 6, domain=STROKES)  # what was written must load
    print(f"wrote the strokes domain into {directory / META_FILE}", flush=True)


if __name__ == "__main__":
    main()
