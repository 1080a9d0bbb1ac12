"""Choose the scoring and the decision thresholds on the validation writers; write models/models.json.

python -m training.calibrate [--data DIR] [--target-far 0.01]

Uses only the training writers (cohort) and the validation writers (scoring
choice, thresholds); the test writers are never read here.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
from pathlib import Path

import numpy as np

from hwotp import scoring
from hwotp.models import META_FILE, ModelBundle, models_dir
from hwotp.onnx_model import OnnxModel, sha256_of
from hwotp.scoring import ScoringConfig
from training import data, protocol, quantize, split

INPUT_SPEC = {
    "name": "image", "shape": ["batch", 1, 28, 28], "dtype": "float32", "range": [0.0, 1.0],
    "normalisation": "MNIST: ink bounding box fitted to 20x20 keeping aspect ratio, centre of mass at the "
                     "centre of 28x28, white ink on black (hwotp.preprocess.preprocess_box)",
}
CALIBRATION_LENGTHS = range(1, 11)
TARGET_FARS = (0.01, 0.001)
SEARCH_LENGTHS = (1, 4, 6, 8)
COHORT_ENROL = 3
# Thresholds that hold their target FAR on this share of writer-bootstrap resamples of the
# validation writers (protocol.threshold_holding_far): new writers are another draw.
THRESHOLD_CONFIDENCE = 0.9


def _entry(directory: Path, file: str, version: str, output: str, earlier: dict | None = None, **extra) -> dict:
    """A model's models.json entry. Recalibrating the file an earlier entry describes (same
    sha256) keeps that entry's version and validation note: a version names a file."""
    sha256 = sha256_of(directory / file)
    if earlier and earlier.get("sha256") == sha256:
        version = earlier["version"]
        if "note" in earlier.get("validation", {}) and "validation" in extra:
            extra["validation"] = {**extra["validation"], "note": earlier["validation"]["note"]}
    elif quantize.is_quantized(directory / file):
        version += quantize.SUFFIX
    return {"file": file, "version": version, "sha256": sha256, "input": INPUT_SPEC, "output": output, **extra}


def mean_eer(enrolment, scores) -> float:
    eers = []
    for length in SEARCH_LENGTHS:
        attempts = protocol.build_attempts(enrolment, scores, length, 100, seed=1000 + length)
        eers.append(protocol.eer(attempts.genuine.mean(axis=1), attempts.impostor.mean(axis=1)))
    return float(np.mean(eers))


def choose_scoring(embeddings, enrolment, cohort) -> tuple[ScoringConfig, list[dict]]:
    trials = []
    tops = [top for top in (0, 20, 50, 150) if top < len(cohort)]  # a cohort smaller than 150 offers fewer
    for weight, top in itertools.product((0.0, 0.25, 0.5, 0.75), tops):
        config = ScoringConfig("cosine", weight, top)
        scores = protocol.score_matrix(embeddings, enrolment, cohort, config)
        trials.append({"config": config.to_dict(), "val_mean_eer": mean_eer(enrolment, scores)})
        print(f"  {config}: validation mean EER {trials[-1]['val_mean_eer']:.4f}", flush=True)
    best = min(trials, key=lambda t: t["val_mean_eer"])
    return ScoringConfig(**best["config"]), trials


def fit_scoring(embeddings, enrolment, cohort) -> tuple[ScoringConfig, list[dict], np.ndarray]:
    """The scoring chosen on validation writers and calibrated per digit on them: the config,
    the search's trials, and the writers' calibrated scores (P, T)."""
    config, trials = choose_scoring(embeddings, enrolment, cohort)
    scores = protocol.score_matrix(embeddings, enrolment, cohort, config)
    genuine = enrolment.probe_owner[:, None] == np.arange(len(enrolment.writers))[None, :]
    config = scoring.fit_digit_calibration(scores, enrolment.probe_digit, genuine, config)
    return config, trials, protocol.score_matrix(embeddings, enrolment, cohort, config)


def thresholds(enrolment, scores) -> dict:
    """{target FAR: {policy: {length: threshold}}} from validation impostor attempts, each the
    threshold that holds its target on THRESHOLD_CONFIDENCE of writer-bootstrap resamples."""
    out = {str(far): {"all_pass": {}, "fused_mean": {}} for far in TARGET_FARS}
    for length in CALIBRATION_LENGTHS:
        attempts = protocol.build_attempts(enrolment, scores, length, 400, seed=2000 + length)
        by_policy = {"all_pass": attempts.impostor.min(axis=1), "fused_mean": attempts.impostor.mean(axis=1)}
        for far in TARGET_FARS:
            for policy, score in by_policy.items():
                out[str(far)][policy][str(length)] = protocol.threshold_holding_far(
                    score, attempts.impostor_targets, attempts.impostor_writers, far, THRESHOLD_CONFIDENCE,
                    seed=length)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--models", default=None)
    parser.add_argument("--target-far", type=float, default=0.01, choices=TARGET_FARS,
                        help="the deployed default (HWOTP_TARGET_FAR picks another)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N digits (smoke runs)")
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    directory = models_dir(args.models)
    today = datetime.date.today().isoformat()
    digits = data.load(args.data, limit=args.limit)
    parts = {name: digits.of_writers(keys) for name, keys in split.load_split().items()}
    train, val = parts["train"], parts["val"]

    recognizer = OnnxModel(directory / "recognizer.onnx")
    val_accuracy = float((recognizer(val.images[:, None]).argmax(1) == val.digits).mean())
    print(f"recognizer: validation accuracy {val_accuracy:.4%}", flush=True)

    embedder = OnnxModel(directory / "verifier.onnx")
    cohort_enrolment = protocol.enrol(train.digits, train.writers, COHORT_ENROL)
    train_embeddings = embedder(train.images[:, None])
    cohort = protocol.templates_of(train_embeddings, cohort_enrolment)
    np.savez(directory / "cohort.npz", templates=cohort.astype(np.float16), writers=cohort_enrolment.writers)
    cohort = cohort.astype(np.float16).astype(np.float32)  # exactly what the services will load

    val_embeddings = embedder(val.images[:, None])
    val_enrolment = protocol.enrol(val.digits, val.writers, 3)
    print("choosing the scoring on the validation writers:", flush=True)
    config, trials, val_scores = fit_scoring(val_embeddings, val_enrolment, cohort)

    earlier = json.loads((directory / META_FILE).read_text()) if (directory / META_FILE).exists() else {}
    meta = {
        "created": today,
        "split": "models/split.json",
        "recognizer": _entry(directory, "recognizer.onnx", f"recognizer-{today}", "logits (batch, 10)",
                             earlier.get("recognizer"),
                             validation={"accuracy": val_accuracy}),
        "verifier": _entry(directory, "verifier.onnx", f"verifier-cosface-{today}",
                           "embedding (batch, 128), unit length", earlier.get("verifier"), scoring=config.to_dict(),
                           cohort={"file": "cohort.npz", "sha256": sha256_of(directory / "cohort.npz"),
                                   "writers": int(len(cohort)), "source": "training writers, 3 samples per digit"},
                           validation={"scoring_search": trials}),
        "baseline_verifier": _entry(directory, "baseline-verifier.onnx", f"verifier-contrastive-{today}",
                                    "embedding (batch, 128), unit length", earlier.get("baseline_verifier"),
                                    scoring=ScoringConfig("euclidean", 0.0, 0).to_dict()),
        "decision": {
            "target_far": args.target_far,
            "calibrated_on": "validation writers of models/split.json",
            "thresholds": thresholds(val_enrolment, val_scores),
        },
        "figures": {},
    }
    if "online_recognizer" in earlier:  # calibrated on nothing here: it stays as it was
        meta["online_recognizer"] = earlier["online_recognizer"]
    # Figures of earlier models would be stale: `training.evaluate --record` refills them.
    path = directory / META_FILE
    path.write_text(json.dumps(meta, indent=1) + "\n")
    ModelBundle.load(directory)  # what was written must load
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
