"""Reading digits from the recognizers' outputs: pure numpy, shared by the recognizer service and evaluation.

A box written as strokes is read twice, from its picture (the recognizer) and
from its pen path (the online recognizer, when the models include one). The
two readings' log-probabilities are added, the path's weighted as chosen on
validation writers (models.json "online_recognizer"), and the box holds the
digit with the highest sum. The order and direction of the strokes tell apart
digits whose pictures look alike, and the picture those whose paths do.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def fused(image_logits: np.ndarray, path_logits: np.ndarray | None, path_weight: float) -> np.ndarray:
    """(n, 10) logits of the two readings -> (n, 10) logits of the box (a softmax of them is
    the box's probabilities); without path logits, the image's."""
    if path_logits is None:
        return log_softmax(image_logits)
    return log_softmax(log_softmax(image_logits) + path_weight * log_softmax(path_logits))


def read(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 10) logits -> the digits and their softmax probabilities."""
    probabilities = np.exp(log_softmax(logits))
    digits = probabilities.argmax(axis=1)
    return digits, probabilities[np.arange(len(digits)), digits]
