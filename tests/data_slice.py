"""Write a small data directory of the mnist-writers layout: every digit of a few writers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from training import data, split


def write_slice(out: Path, per_part: dict[str, int]) -> Path:
    """The first N writers of each part of models/split.json, all their digits, in file order."""
    source = data.data_dir()
    with gzip.open(source / data.IMAGES, "rb") as handle:
        raw = handle.read()
    with gzip.open(source / data.QMNIST, "rt") as handle:
        rows = [line for line in handle if line.strip()]
    count = int.from_bytes(raw[4:8], "big")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, 784)
    keys = np.array([int(r.split("\t")[1]) * 10000 + int(r.split("\t")[2]) for r in rows])
    parts = split.load_split()
    chosen = [w for name, n in per_part.items() for w in parts[name][:n]]
    keep = np.flatnonzero(np.isin(keys, chosen))
    out.mkdir(parents=True, exist_ok=True)
    header = (2051).to_bytes(4, "big") + len(keep).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with gzip.open(out / data.IMAGES, "wb") as handle:
        handle.write(header + images[keep].tobytes())
    with gzip.open(out / data.QMNIST, "wt") as handle:
        handle.writelines(rows[i] for i in keep)
    return out
