"""Writer-disjoint train / validation / test split, stratified by NIST series.

`python -m training.split` writes models/split.json; every figure the project
reports is measured on the test writers listed there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training import data

SPLIT_FILE = data.REPO_ROOT / "models" / "split.json"
FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


def make_split(writers: np.ndarray, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {name: [] for name in FRACTIONS}
    for series in sorted(set(int(w) // 10000 for w in writers)):
        members = np.array(sorted(w for w in set(writers.tolist()) if w // 10000 == series))
        rng.shuffle(members)
        n_val = round(len(members) * FRACTIONS["val"])
        n_test = round(len(members) * FRACTIONS["test"])
        parts["val"] += members[:n_val].tolist()
        parts["test"] += members[n_val : n_val + n_test].tolist()
        parts["train"] += members[n_val + n_test :].tolist()
    return {name: sorted(int(w) for w in keys) for name, keys in parts.items()}


def load_split(path: Path = SPLIT_FILE) -> dict[str, list[int]]:
    return json.loads(path.read_text())["writers"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--out", type=Path, default=SPLIT_FILE)
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    meta = data._read_qmnist(data.data_dir(args.data) / data.QMNIST)
    writers = meta[:, 1] * 10000 + meta[:, 2]
    split = make_split(writers, args.seed)
    document = {
        "seed": args.seed,
        "writer_key": "series * 10000 + NIST writer id (series 0: census employees, 4: students)",
        "counts": {name: len(keys) for name, keys in split.items()},
        "writers": split,
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}: {document['counts']}")


if __name__ == "__main__":
    main()
