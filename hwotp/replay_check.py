"""Is a box a replay? Cosine similarity of its fingerprint with the user's earlier ones."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.98


def similarities(fingerprints: np.ndarray, history: np.ndarray) -> np.ndarray:
    """(n, 1024) int8 against (m, 1024) int8 -> (n,) highest cosine similarity (0 with no history)."""
    if len(history) == 0 or len(fingerprints) == 0:
        return np.zeros(len(fingerprints))
    a = fingerprints.astype(np.float32)
    b = history.astype(np.float32)
    # Dot products first, then divide by the norms: the history is never rescaled.
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))[:, None] * np.sqrt(np.einsum("ij,ij->i", b, b))[None, :]
    return ((a @ b.T) / np.maximum(norms, 1e-6)).max(axis=1)


def replayed(fingerprints: np.ndarray, history: np.ndarray, threshold: float) -> np.ndarray:
    return similarities(fingerprints, history) >= threshold
