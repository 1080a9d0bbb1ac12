"""The committed models and their metadata (models/models.json), as the services use them.

A box is of a domain: "scan" (an image, as the models were first trained on)
or "strokes" (a touchscreen's pen path, rendered by hwotp.ink). The verifier's
raw scores differ between domains, so each domain has a cohort, a scoring
calibration and thresholds of its own, fitted on validation writers of that
domain (models.json "domains"; "scan" is the top-level entry).

A score's meaning also depends on how many samples of the digit the user
enrolled: a template averaged from three samples matches its writer better
than one sample does. A domain may therefore carry calibrations for deeper
enrolments ("depths": {"3": {...}}, overriding the entry's own fields); a
user is scored by the deepest calibration their enrolment reaches (their
fewest samples of any digit), the entry's own below that.

Boxes written as strokes are also judged by the online verifier, an embedding
of the pen's path (hwotp.trajectory). Its scores are calibrated like the
image's, and a box's writer score is then the sum of the two log-likelihood
ratios (the image's weighted, as chosen on validation writers): the
"image+online" modalities, with thresholds of their own (models.json
"domains"."strokes"."online"). A box without a path, or a user enrolled
without strokes, is judged on the image alone ("image").
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from hwotp import recognition
from hwotp.onnx_model import OnnxModel, sha256_of
from hwotp.outcomes import SCAN, STROKES  # noqa: F401  (the domains, named where the models are)

# What judged a box's writer: the image embedding alone, or with the online one.
IMAGE, IMAGE_ONLINE = "image", "image+online"
from hwotp.scoring import ScoringConfig
from hwotp.trajectory import CHANNELS, POINTS

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
META_FILE = "models.json"


def models_dir(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("HWOTP_MODELS_DIR") or DEFAULT_MODELS_DIR)


class ModelBundle:
    """Lazily loads only what a caller uses: the recognizer service never loads the verifier."""

    def __init__(self, directory: Path, meta: dict, threads: int = 1):
        self.directory, self.meta, self.threads = directory, meta, threads
        self._embedders: dict[str, OnnxModel] = {}
        self._cohorts: dict[str, np.lib.npyio.NpzFile] = {}

    @classmethod
    def load(cls, directory: str | os.PathLike | None = None, threads: int = 1) -> "ModelBundle":
        path = models_dir(directory)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} is missing: run `make train` or check HWOTP_MODELS_DIR")
        return cls(path, json.loads(meta_path.read_text()), threads)

    def _onnx(self, entry: dict) -> OnnxModel:
        return OnnxModel(self.directory / entry["file"], self.threads, entry.get("sha256"))

    @cached_property
    def recognizer(self) -> OnnxModel:
        return self._onnx(self.meta["recognizer"])

    @property
    def recognizer_version(self) -> str:
        return self.meta["recognizer"]["version"]

    def _verifier_entry(self, which: str = "deployed") -> dict:
        return self.meta["verifier" if which == "deployed" else "baseline_verifier"]

    @property
    def domains(self) -> list[str]:
        """The domains the deployed verifier is calibrated for."""
        return [SCAN, *self.meta.get("domains", {})]

    def _domain(self, domain: str, depth: int = 1) -> dict:
        if domain == SCAN:
            return {"scoring": self.meta["verifier"]["scoring"], "cohort": self.meta["verifier"]["cohort"],
                    "thresholds": self.meta["decision"]["thresholds"]}
        if domain not in self.meta.get("domains", {}):
            raise ValueError(f"the verifier is not calibrated for {domain!r} boxes (models.json domains)")
        return _at_depth(self.meta["domains"][domain], depth)

    def depths(self, domain: str) -> list[int]:
        """The enrolment depths a domain has calibrations of (1: the entry's own)."""
        entry = self.meta.get("domains", {}).get(domain, {}) if domain != SCAN else {}
        return sorted({1, *(int(d) for d in entry.get("depths", {}))})

    def verifier(self, which: str = "deployed", domain: str = SCAN, depth: int = 1) -> tuple[
            OnnxModel, ScoringConfig, np.ndarray | None]:
        entry = self._verifier_entry(which)
        if which not in self._embedders:
            self._embedders[which] = self._onnx(entry)
        config = self.scoring_config(which, domain, depth)
        return self._embedders[which], config, self.cohort(domain) if config.cohort_top > 0 else None

    def scoring_config(self, which: str = "deployed", domain: str = SCAN, depth: int = 1) -> ScoringConfig:
        entry = self._domain(domain, depth) if which == "deployed" else self._verifier_entry(which)
        return ScoringConfig(**entry["scoring"])

    @property
    def has_online(self) -> bool:
        """Whether an online verifier is deployed and calibrated for strokes."""
        return "online_verifier" in self.meta and "online" in self.meta.get("domains", {}).get(STROKES, {})

    @cached_property
    def online_verifier(self) -> OnnxModel:
        return self._path_model(self.meta["online_verifier"])

    @property
    def has_online_recognizer(self) -> bool:
        """Whether boxes written as strokes are also read from their pen path (hwotp.recognition)."""
        return "online_recognizer" in self.meta

    @cached_property
    def online_recognizer(self) -> OnnxModel:
        return self._path_model(self.meta["online_recognizer"])

    @property
    def path_weight(self) -> float:
        """The weight of the online recognizer's reading beside the image's."""
        return float(self.meta["online_recognizer"]["path_weight"])

    def digit_logits(self, fields: np.ndarray, paths: np.ndarray | None = None) -> np.ndarray:
        """Boxes' digit logits as the recognizer service reads them: the image's, fused with the
        pen path's (hwotp.recognition) when the boxes came as strokes (paths) and the models
        include an online recognizer."""
        if paths is None or not self.has_online_recognizer:
            return recognition.fused(self.recognizer(fields), None, 0.0)
        return recognition.fused(self.recognizer(fields), self.online_recognizer(paths), self.path_weight)

    def _path_model(self, entry: dict) -> OnnxModel:
        model = self._onnx(entry)
        if model.input_shape[1:] != [CHANNELS, POINTS]:
            raise ValueError(f"{model.path} reads paths of {model.input_shape[1:]} (channels, points), but "
                             f"hwotp.trajectory makes {[CHANNELS, POINTS]}: the models and the code are of "
                             "different versions")
        return model

    @property
    def online_version(self) -> str:
        return self.meta["online_verifier"]["version"]

    def _online(self, depth: int = 1) -> dict:
        return _at_depth(self.meta["domains"][STROKES]["online"], depth)

    def online_scoring(self, depth: int = 1) -> tuple[ScoringConfig, np.ndarray | None]:
        config = ScoringConfig(**self._online(depth)["scoring"])
        return config, (self.online_cohort() if config.cohort_top > 0 else None)

    def online_cohort(self) -> np.ndarray:
        """The online verifier's cohort templates, (J, 10, D), whether or not a calibration uses them."""
        return self._cohort_file(f"{STROKES}/online", self._online()["cohort"])["templates"].astype(np.float32)

    def image_weight(self, depth: int = 1) -> float:
        """The weight of the image's log-likelihood ratio in a box's image+online score."""
        return float(self._online(depth)["image_weight"])

    def modality_thresholds(self, modalities: str, domain: str, depth: int = 1) -> dict:
        """{target FAR: {policy: {length: threshold}}} of a domain's scores of these modalities."""
        if modalities == IMAGE_ONLINE:
            return self._online(depth)["thresholds"]
        return self._domain(domain, depth)["thresholds"]

    @property
    def verifier_version(self) -> str:
        return self.meta["verifier"]["version"]

    def _cohort_file(self, name: str, entry: dict):
        """A cohort file (checked against its sha256 once), kept by name: a domain, or the
        online verifier's."""
        if name not in self._cohorts:
            path = self.directory / entry["file"]
            if sha256_of(path) != entry["sha256"]:
                raise ValueError(f"{path} does not match the sha256 in models.json")
            self._cohorts[name] = np.load(path)
        return self._cohorts[name]

    def cohort(self, domain: str = SCAN) -> np.ndarray:
        return self._cohort_file(domain, self._domain(domain)["cohort"])["templates"].astype(np.float32)

    def cohort_writers(self, domain: str = SCAN) -> np.ndarray:
        return self._cohort_file(domain, self._domain(domain)["cohort"])["writers"]

    @property
    def target_far(self) -> float:
        return float(self.meta["decision"]["target_far"])

    @property
    def target_fars(self) -> list[float]:
        return sorted(float(far) for far in self.meta["decision"]["thresholds"])

    def threshold(self, policy: str, length: int, target_far: float | None = None, domain: str = SCAN,
                  modalities: str = IMAGE, depth: int = 1) -> float:
        far = self.target_far if target_far is None else target_far
        by_far = self.modality_thresholds(modalities, domain, depth)
        if str(far) not in by_far:
            raise ValueError(f"no thresholds for target FAR {far}; calibrated: {', '.join(by_far)}")
        return float(by_far[str(far)][policy][str(length)])

    def versions(self) -> dict:
        found = {"recognizer": self.recognizer_version, "verifier": self.verifier_version}
        if self.has_online_recognizer:
            found["online_recognizer"] = self.meta["online_recognizer"]["version"]
        return {**found, "online_verifier": self.online_version} if self.has_online else found


def _at_depth(entry: dict, depth: int) -> dict:
    """A calibrated entry as it applies to users enrolled `depth` samples deep: the deepest
    of its "depths" that they reach overrides its own fields."""
    reached = [int(d) for d in entry.get("depths", {}) if int(d) <= depth]
    return {**entry, **entry["depths"][str(max(reached))]} if reached else entry
