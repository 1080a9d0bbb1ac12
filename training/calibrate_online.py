"""Calibrate the online verifier and its fusion with the image verifier; write them into models/models.json.

python -m training.calibrate_online [--strokes FILE] [--models DIR]

Run after training.calibrate_strokes (which calibrates the image verifier on
strokes). On the stroke set's writers (models/unipen-split.json; the test
writers are never read): a cohort of training writers' path embeddings, the
scoring choice and per-digit calibration into log-likelihood ratios on the
validation writers, the weight of the image's ratio in a box's fused score,
and the fused scores' thresholds from validation impostor attempts: with one
enrolled sample per digit, and again for each deeper enrolment that
training.calibrate_strokes calibrates (the entry's "depths").
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from hwotp.models import META_FILE, STROKES, ModelBundle, models_dir
from hwotp.onnx_model import OnnxModel, sha256_of
from hwotp.trajectory import CHANNELS, POINTS
from training import calibrate, protocol, strokes, unipen

ONNX_FILE = "online-verifier.onnx"
COHORT_FILE = "cohort-online.npz"
COHORT_ENROL = 2
IMAGE_WEIGHTS = (0.25, 0.5, 1.0)
INPUT_SPEC = {"name": "path", "shape": ["batch", CHANNELS, POINTS], "dtype": "float32",
              "normalisation": "hwotp.trajectory.path_features: the strokes joined into one path (pen-up jumps "
                               "included), scaled by the bounding box's longer side, resampled evenly along it; "
                               "per point x, y, direction (cos, sin), turning (cos, sin), pen up, log speed relative to the "
                               "digit's mean (from t_ms when it advances, else the points' order)"}


def _enrolment_of(samples, k: int) -> protocol.Enrolment:
    names = sorted({s.writer for s in samples})
    return protocol.enrol(np.array([s.digit for s in samples]), np.array([names.index(s.writer) for s in samples]), k)


def image_scores(bundle: ModelBundle, samples, enrolment: protocol.Enrolment, depth: int) -> np.ndarray:
    """The image verifier's calibrated scores in the strokes domain, (P, T)."""
    embedder, config, cohort = bundle.verifier("deployed", STROKES, depth)
    rendered, _ = strokes.digit_set(samples)
    return protocol.score_matrix(embedder(rendered.images[:, None]), enrolment, cohort, config)


def calibration(bundle: ModelBundle, val, embeddings: np.ndarray, cohort: np.ndarray, depth: int) -> dict:
    """The online scoring choice and calibration, the image's weight and the fused thresholds
    of validation writers enrolled `depth` samples per digit deep."""
    enrolment = _enrolment_of(val, depth)
    print(f"choosing the online scoring on {len(enrolment.writers)} validation writers, {depth} enrolled per digit:",
          flush=True)
    config, trials, online = calibrate.fit_scoring(embeddings, enrolment, cohort)
    image = image_scores(bundle, val, enrolment, depth)
    weights = {w: calibrate.mean_eer(enrolment, w * image + online) for w in IMAGE_WEIGHTS}
    for w, eer in weights.items():
        print(f"  image weight {w}: validation mean EER {eer:.4f}", flush=True)
    weight = min(weights, key=weights.get)
    return {
        "calibrated_on": f"validation writers of models/unipen-split.json, {depth} enrolled per digit",
        "scoring": config.to_dict(),
        "image_weight": weight,
        "validation": {"writers": int(len(enrolment.writers)), "scoring_search": trials,
                       "image_weight_search": [{"image_weight": w, "val_mean_eer": e} for w, e in weights.items()]},
        "thresholds": calibrate.thresholds(enrolment, weight * image + online),
    }


def online_version(earlier: dict, sha256: str, today: datetime.date) -> str:
    """A version names a file: recalibrating the same one keeps the users' online templates
    valid, and another file, even one trained the same day, invalidates them."""
    if earlier.get("sha256") == sha256:
        return earlier["version"]
    return f"online-verifier-{today.isoformat()}-{sha256[:8]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=Path, default=unipen.STROKE_SET)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    strokes.exit_if_missing(args.strokes)
    directory = models_dir(args.models)
    bundle = ModelBundle.load(directory)
    samples = strokes.read_stroke_set(args.strokes)
    train, val = strokes.samples_of(samples, "train"), strokes.samples_of(samples, "val")
    embedder = OnnxModel(directory / ONNX_FILE)

    cohort_enrolment = _enrolment_of(train, COHORT_ENROL)
    cohort = protocol.templates_of(embedder(strokes.paths_of(train)), cohort_enrolment)
    np.savez(directory / COHORT_FILE, templates=cohort.astype(np.float16), writers=cohort_enrolment.writers)
    cohort = cohort.astype(np.float16).astype(np.float32)  # exactly what the services will load
    print(f"cohort: {len(cohort)} training writers, {COHORT_ENROL} samples per digit", flush=True)

    embeddings = embedder(strokes.paths_of(val))
    depths = bundle.depths(STROKES)
    shallowest, *deeper = (calibration(bundle, val, embeddings, cohort, depth) for depth in depths)

    meta = json.loads((directory / META_FILE).read_text())
    sha256, earlier = sha256_of(directory / ONNX_FILE), meta.get("online_verifier", {})
    version = online_version(earlier, sha256, datetime.date.today())
    meta["online_verifier"] = {"file": ONNX_FILE, "version": version, "sha256": sha256, "input": INPUT_SPEC,
                               "output": f"embedding (batch, {embeddings.shape[1]}), unit length"}
    meta["domains"][STROKES]["online"] = {
        **shallowest,
        "cohort": {"file": COHORT_FILE, "sha256": sha256_of(directory / COHORT_FILE), "writers": int(len(cohort)),
                   "source": f"stroke-set training writers, {COHORT_ENROL} samples per digit"},
        "depths": {str(depth): entry for depth, entry in zip(depths[1:], deeper)},
    }
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    ModelBundle.load(directory).online_scoring()  # what was written must load
    print(f"wrote the online verifier into {directory / META_FILE}", flush=True)


if __name__ == "__main__":
    main()
