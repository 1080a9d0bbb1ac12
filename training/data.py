"""Load a writer-labelled digit set laid out like ../shared/data/mnist-writers.

Files: MNIST idx images and labels, plus QMNIST extended labels (one row per
image, same order) that name the NIST writer of every digit.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwotp.preprocess import normalize_digit

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist-writers"
DOWNLOADED_DATA_DIR = REPO_ROOT / "data" / "mnist-writers"  # where `make data` puts the originals
IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"
QMNIST = "qmnist-train-labels.tsv.gz"


class MissingData(FileNotFoundError):
    """The data directory lacks the digit files; the message says how to get them."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $HWOTP_DATA_DIR, else ../shared/data/mnist-writers,
    else data/mnist-writers (what `make data` downloads)."""
    fallback = SHARED_DATA_DIR if SHARED_DATA_DIR.is_dir() else DOWNLOADED_DATA_DIR
    chosen = explicit or os.environ.get("HWOTP_DATA_DIR") or fallback
    path = Path(chosen)
    missing = [name for name in (IMAGES, QMNIST) if not (path / name).is_file()]
    if missing:
        raise MissingData(
            f"data directory {path} lacks {', '.join(missing)}; run `make data` to download "
            "the public originals or set HWOTP_DATA_DIR"
        )
    return path


def why_missing(directory: str | os.PathLike | None = None) -> str:
    """What the data directory lacks and how to get it ('' when nothing is missing)."""
    try:
        data_dir(directory)
    except MissingData as missing:
        return str(missing)
    return ""


def exit_if_missing(directory: str | os.PathLike | None = None) -> None:
    """For command-line tools, before they start any work: stop with the reason, not a traceback."""
    if missing := why_missing(directory):
        raise SystemExit(f"error: {missing}")


@dataclass(frozen=True)
class DigitSet:
    """Digits with their writers. images: (n, 28, 28) float32 in [0, 1], normalised."""

    images: np.ndarray
    digits: np.ndarray  # int64 class 0-9
    series: np.ndarray  # NIST HSF series: 0 census employees, 4 high-school students
    writers: np.ndarray  # int64 writer key, series * 10000 + NIST writer id

    def __len__(self) -> int:
        return len(self.digits)

    def subset(self, mask: np.ndarray) -> "DigitSet":
        return DigitSet(self.images[mask], self.digits[mask], self.series[mask], self.writers[mask])

    def of_writers(self, writer_keys) -> "DigitSet":
        return self.subset(np.isin(self.writers, np.asarray(list(writer_keys), dtype=np.int64)))


def writer_key(series: int, writer_id: int) -> int:
    return int(series) * 10000 + int(writer_id)


def _read_idx_images(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    count, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def _read_qmnist(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as handle:
        rows = [line.split("\t")[:3] for line in handle if line.strip()]
    return np.asarray(rows, dtype=np.int64)


def load(directory: str | os.PathLike | None = None, limit: int | None = None) -> DigitSet:
    """Load and normalise every digit once (the same normalisation as serving)."""
    path = data_dir(directory)
    raw = _read_idx_images(path / IMAGES)
    meta = _read_qmnist(path / QMNIST)
    if len(meta) != len(raw):
        raise ValueError(f"{path}: {len(raw)} images but {len(meta)} QMNIST rows")
    if limit is not None:
        raw, meta = raw[:limit], meta[:limit]
    images = np.stack([normalize_digit(image / np.float32(255.0)) for image in raw])
    series = meta[:, 1]
    return DigitSet(images, meta[:, 0], series, series * 10000 + meta[:, 2])
