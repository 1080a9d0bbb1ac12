"""Digit recognition on a batch of model inputs (no gRPC here)."""

from __future__ import annotations

import time

import numpy as np

from hwotp import recognition
from hwotp.metrics import Metrics
from hwotp.onnx_model import OnnxModel


class DigitRecognizer:
    """online: the online recognizer (pen paths -> digit logits), when the models include one,
    and the weight of its reading (hwotp.recognition)."""

    def __init__(self, model: OnnxModel, version: str, metrics: Metrics, online: OnnxModel | None = None,
                 path_weight: float = 0.0):
        self.model, self.version, self.metrics = model, version, metrics
        self.online, self.path_weight = online, path_weight

    def _infer(self, model: OnnxModel, inputs: np.ndarray, name: str) -> np.ndarray:
        started = time.perf_counter()
        logits = model(inputs)
        self.metrics.inference_seconds.labels(name).observe(time.perf_counter() - started)
        self.metrics.batch_size.labels(name).observe(len(inputs))
        return logits

    def recognize(self, batch: np.ndarray, paths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(n, 1, 28, 28) and, for boxes written as strokes, their (n, CHANNELS, POINTS) pen
        paths -> (digits, confidences)."""
        image = self._infer(self.model, batch, "recognizer")
        by_path = None
        if paths is not None and self.online is not None:
            by_path = self._infer(self.online, paths, "online_recognizer")
        return recognition.read(recognition.fused(image, by_path, self.path_weight))
