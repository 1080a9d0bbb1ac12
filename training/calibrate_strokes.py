"""Calibrate the verifier for boxes written as strokes; add the "strokes" domain to models/models.json.

python -m training.calibrate_strokes [--strokes FILE] [--models DIR]

The verifier's raw scores on rendered strokes sit far above those on scans, so
the scans' cohort and calibration mean nothing there. This fits the strokes'
own: a cohort of the stroke set's training writers, the scoring choice and the
per-digit calibration on its validation writers, and thresholds from their
impostor attempts (models/unipen-split.json; the test writers are never read);
once with one enrolled sample per digit (the fewest a user may have of a digit)
and once more for each deeper enrolment of DEPTHS (the entry's "depths").
The scans' entries stay as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hwotp.models import META_FILE, STROKES, ModelBundle, models_dir
from hwotp.onnx_model import sha256_of
from training import calibrate, protocol, strokes, unipen

COHORT_ENROL = 2
DEPTHS = (1, 3)  # enrolled samples per digit calibrated for: the fewest allowed, and the default minimum
MIN_WRITERS = 5
COHORT_FILE = "cohort-strokes.npz"


def calibrated_depths(val) -> list[int]:
    """DEPTHS that enough validation writers (MIN_WRITERS) have samples for: deeper ones are left
    out (users enrolled that deep are then scored by the deepest calibration there is)."""
    depths = [1]
    for depth in DEPTHS[1:]:
        writers = len(protocol.enrol(val.digits, val.writers, depth).writers)
        if writers < MIN_WRITERS:
            print(f"{depth} enrolled per digit: only {writers} validation writers have as many; not calibrated",
                  flush=True)
            break
        depths.append(depth)
    return depths


def calibration(embeddings: np.ndarray, val, cohort: np.ndarray, depth: int) -> dict:
    """The scoring choice, per-digit calibration and thresholds of validation writers enrolled
    `depth` samples per digit deep."""
    enrolment = protocol.enrol(val.digits, val.writers, depth)
    print(f"choosing the scoring on {len(enrolment.writers)} validation writers, {depth} enrolled per digit:",
          flush=True)
    config, trials, scores = calibrate.fit_scoring(embeddings, enrolment, cohort)
    return {
        "calibrated_on": f"validation writers of models/unipen-split.json, {depth} enrolled per digit",
        "scoring": config.to_dict(),
        "validation": {"writers": int(len(enrolment.writers)), "scoring_search": trials},
        "thresholds": calibrate.thresholds(enrolment, scores),
    }


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
    depths = calibrated_depths(val)
    shallowest, *deeper = (calibration(val_embeddings, val, cohort, depth) for depth in depths)
    meta = json.loads((directory / META_FILE).read_text())
    meta.setdefault("domains", {})[STROKES] = {
        **shallowest,
        "renderer": "hwotp.ink",
        "cohort": {"file": COHORT_FILE, "sha256": sha256_of(directory / COHORT_FILE), "writers": int(len(cohort)),
                   "source": f"stroke-set training writers, {COHORT_ENROL} samples per digit"},
        "depths": {str(depth): entry for depth, entry in zip(depths[1:], deeper)},
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    ModelBundle.load(directory).threshold("all_pass", 6, domain=STROKES)  # what was written must load
    print(f"wrote the strokes domain into {directory / META_FILE}", flush=True)


if __name__ == "__main__":
    main()
