"""Digit recognition on a batch of model inputs (no gRPC here)."""

from __future__ import annotations

import time

import numpy as np

from hwotp.metrics import Metrics
from hwotp.onnx_model import OnnxModel


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class DigitRecognizer:
    def __init__(self, model: OnnxModel, version: str, metrics: Metrics):
        self.model, self.version, self.metrics = model, version, metrics

    def recognize(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 1, 28, 28) -> (digits, confidences)."""
        started = time.perf_counter()
        probabilities = softmax(self.model(batch))
        self.metrics.inference_seconds.labels("recognizer").observe(time.perf_counter() - started)
        self.metrics.batch_size.labels("recognizer").observe(len(batch))
        digits = probabilities.argmax(axis=1)
        return digits, probabilities[np.arange(len(digits)), digits]
