"""An ONNX model run by onnxruntime on the CPU, with the threading of a small machine."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class OnnxModel:
    def __init__(self, path: str | Path, threads: int = 1, expected_sha256: str | None = None):
        self.path = Path(path)
        if expected_sha256 and sha256_of(self.path) != expected_sha256:
            raise ValueError(f"{self.path} does not match the sha256 in models.json")
        options = onnxruntime.SessionOptions()
        # Requests run concurrently in a service; one thread per session keeps
        # them from fighting over two cores.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape  # the batch dimension by name

    def __call__(self, batch: np.ndarray, chunk: int = 512) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        outputs = [self.session.run(None, {self.input_name: batch[i : i + chunk]})[0] for i in range(0, len(batch), chunk)]
        return np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float32)
