"""What both training commands share: seeding, the split's data, batching, export."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import numpy as np
import torch

from training import data, split


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split_data(directory: str | None, limit: int | None = None) -> dict[str, data.DigitSet]:
    digits = data.load(directory, limit=limit)
    writers = split.load_split()
    parts = {name: digits.of_writers(keys) for name, keys in writers.items()}
    print("digits per part: " + ", ".join(f"{name} {len(part)}" for name, part in parts.items()), flush=True)
    return parts


def concat(*sets: data.DigitSet) -> data.DigitSet:
    """Digit sets one after the other (writer keys of stroke sets never meet the scans')."""
    return data.DigitSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in ("images", "digits", "series", "writers")))


class BestEpoch:
    """Early stopping: keeps the weights of the best epoch so far and says when `patience`
    epochs in a row brought no gain."""

    def __init__(self, patience: int, higher_is_better: bool = False):
        self.patience, self.sign = patience, 1 if higher_is_better else -1
        self.best, self.score, self.stale = None, -np.inf, 0

    def saw(self, model: torch.nn.Module, score: float) -> bool:
        """Record an epoch's validation score; True when training should stop."""
        if self.sign * score > self.score:
            self.best, self.score, self.stale = copy.deepcopy(model.state_dict()), self.sign * score, 0
            return False
        self.stale += 1
        if self.stale >= self.patience:
            print(f"early stop: no gain for {self.patience} epochs", flush=True)
            return True
        return False


def tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images[:, None, :, :], dtype=np.float32))


@torch.no_grad()
def predict(model: torch.nn.Module, images: np.ndarray, batch: int = 1024) -> np.ndarray:
    model.eval()
    outputs = [model(tensor(images[i : i + batch])).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(outputs)


def save(model: torch.nn.Module, onnx_path: Path, output_name: str, history: list[dict], minutes: float,
         example: torch.Tensor | None = None, input_name: str = "image") -> None:
    """The ONNX file the services load, plus the torch weights and training log beside it
    (DIR/torch/NAME.pt and .json) that the ONNX-versus-torch test compares against."""
    export_onnx(model, onnx_path, output_name, example, input_name)
    torch_dir = onnx_path.parent / "torch"
    torch_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), torch_dir / f"{onnx_path.stem}.pt")
    log = {"minutes": round(minutes, 2), "threads": torch.get_num_threads(), "history": history}
    (torch_dir / f"{onnx_path.stem}.json").write_text(json.dumps(log, indent=1) + "\n")


def export_onnx(model: torch.nn.Module, path: Path, output_name: str, example: torch.Tensor | None = None,
                input_name: str = "image") -> None:
    """Export with a dynamic batch dimension as one self-contained file; example: an input
    of the model's shape (a batch of two digits by default)."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 1, 28, 28) if example is None else example
    torch.onnx.export(
        model, (example,), str(path), input_names=[input_name], output_names=[output_name],
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
        external_data=False, dynamo=True, verbose=False,
    )
    print(f"exported {path}", flush=True)
