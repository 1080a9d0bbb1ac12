"""Quantise the served image models to int8 in place: python -m training.quantize [--data DIR] [--models DIR]

Static quantisation by onnxruntime (QDQ, int8 weights per output channel, uint8
activations), its activation ranges calibrated on training writers' digits, so
that a login's inference costs less. The recognizer and the image verifier are
quantised (the online verifier is small already; the baseline is evaluation
only). A file's models.json entry, when it describes the file (same sha256),
gets the new sha256 and its version "-int8"; a fresh export is named by
training.calibrate, which runs next and fits cohorts and thresholds on what is
served.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from hwotp.models import META_FILE, models_dir
from hwotp.onnx_model import sha256_of
from training import data, split

SERVED = ("recognizer", "verifier")
CALIBRATION_DIGITS = 512
SUFFIX = "-int8"


class _Digits(CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch: int = 32):
        self.batches = iter([{"image": images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize(path: Path, images: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(path), _Digits(images), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    directory = models_dir(args.models)
    meta_path = directory / META_FILE
    meta = json.loads(meta_path.read_text())
    train = data.load(args.data).of_writers(split.load_split()["train"])
    rng = np.random.default_rng(0)
    images = train.images[rng.choice(len(train), min(CALIBRATION_DIGITS, len(train)), replace=False)][:, None]
    for name in SERVED:
        path = directory / f"{name}.onnx"
        if is_quantized(path):
            print(f"{name}: already int8", flush=True)
            continue
        entry = meta.get(name, {})
        described = entry.get("file") == path.name and entry.get("sha256") == sha256_of(path)
        quantize(path, images.astype(np.float32))
        if described:
            entry.update(sha256=sha256_of(path), version=entry["version"] + SUFFIX)
        print(f"{name}: quantised to int8", flush=True)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")


def is_quantized(path: Path) -> bool:
    import onnx

    return any(node.op_type == "DequantizeLinear" for node in onnx.load(str(path)).graph.node)


if __name__ == "__main__":
    main()
