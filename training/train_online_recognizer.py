"""Train the online recognizer (digits from pen paths) and choose the weight of its reading; write models.json.

python -m training.train_online_recognizer [--strokes FILE] [--epochs 12] [--seed 1] [--models DIR]

A path network (nets.PathRecognizer) learns the digits of the stroke set's
training writers, every epoch from their strokes under a new small random
distortion (the online verifier's training loop, training.train_online.fit).
It does not replace the image recognizer: a box written as strokes is read by
both, their log-probabilities added (hwotp.recognition), and the weight of the
path's reading is the one of PATH_WEIGHTS under which the validation writers'
digits (models/unipen-split.json; test writers are never read) are read best
by the served image recognizer and this network together. Run after the image
recognizer is final (make train: after training.quantize).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwotp import recognition
from hwotp.models import META_FILE, ModelBundle, models_dir
from hwotp.onnx_model import OnnxModel, sha256_of
from hwotp.trajectory import CHANNELS, POINTS
from training import calibrate_online, common, nets, strokes, unipen
from training.train_online import fit

ONNX_FILE = "online-recognizer.onnx"
PATH_WEIGHTS = (0.25, 0.5, 1.0, 2.0)


def accuracy(logits: np.ndarray, digits: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == digits).mean())


def train(samples, validation: tuple[np.ndarray, np.ndarray], epochs: int, seed: int
          ) -> tuple[nets.PathRecognizer, list[dict]]:
    digits = torch.tensor([s.digit for s in samples])
    model = nets.PathRecognizer(CHANNELS, POINTS)

    def loss_of(inputs, idx):
        return F.cross_entropy(model(inputs[idx]), digits[idx], label_smoothing=0.05)

    def end_of_epoch(epoch: int) -> dict:
        with torch.no_grad():
            found = accuracy(model(torch.from_numpy(validation[0])).numpy(), validation[1])
        print(f"epoch {epoch}: validation accuracy of the path alone {found:.4f}", flush=True)
        return {"epoch": epoch, "val_accuracy": found}

    return model, fit(model, model.parameters(), samples, epochs, seed, loss_of, end_of_epoch, "online recognizer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=Path, default=unipen.STROKE_SET)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    strokes.exit_if_missing(args.strokes)
    directory = models_dir(args.models)
    samples = strokes.read_stroke_set(args.strokes)
    train_samples, val_samples = strokes.samples_of(samples, "train"), strokes.samples_of(samples, "val")
    val_digits = np.array([s.digit for s in val_samples])
    print(f"paths: {len(train_samples)} training, {len(val_samples)} validation", flush=True)
    common.seed_everything(args.seed)
    started = time.time()
    val_paths = strokes.paths_of(val_samples)
    model, history = train(train_samples, (val_paths, val_digits), args.epochs, args.seed)
    minutes = (time.time() - started) / 60
    common.save(model, directory / ONNX_FILE, "logits", history, minutes, torch.zeros(2, CHANNELS, POINTS), "path")

    rendered, _ = strokes.digit_set(val_samples)
    image = ModelBundle.load(directory).recognizer(rendered.images[:, None])
    by_path = OnnxModel(directory / ONNX_FILE)(val_paths)
    search = {w: accuracy(recognition.fused(image, by_path, w), val_digits) for w in PATH_WEIGHTS}
    for weight, found in search.items():
        print(f"  path weight {weight}: validation accuracy {found:.4f}", flush=True)
    weight = max(search, key=search.get)
    meta_path = directory / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["online_recognizer"] = {
        "file": ONNX_FILE,
        "version": f"online-recognizer-{datetime.date.today().isoformat()}-{sha256_of(directory / ONNX_FILE)[:8]}",
        "sha256": sha256_of(directory / ONNX_FILE),
        "input": calibrate_online.INPUT_SPEC,
        "output": "logits (batch, 10)",
        "path_weight": weight,
        "validation": {"writers": len({s.writer for s in val_samples}), "digits": int(len(val_digits)),
                       "accuracy_image": accuracy(image, val_digits), "accuracy_path": accuracy(by_path, val_digits),
                       "accuracy_fused": search[weight],
                       "path_weight_search": [{"path_weight": w, "val_accuracy": a} for w, a in search.items()]},
    }
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    ModelBundle.load(directory).online_recognizer  # what was written must load
    print(f"trained in {minutes:.1f} min; path weight {weight}: validation accuracy "
          f"{accuracy(image, val_digits):.4f} (image) -> {search[weight]:.4f}; wrote {meta_path}", flush=True)


if __name__ == "__main__":
    main()
