"""Measure replay detection on held-out writers: replays caught, fresh genuine writing caught.

python -m training.measure_replay [--writers test] [--threshold 0.98] [--out build/replay.json]

Boxes are rendered as a client sends them (112 px PNG). A replay is a box
re-encoded as JPEG (quality 60-95) and shifted by up to 2 pixels. The history
of a genuine box is everything else its writer wrote (all other samples, every
digit), more than a real history holds, so the false-reject figures are
pessimistic. Attempts are 6 real boxes of distinct digits by one writer.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from hwotp.canvas import png_of
from hwotp.preprocess import decode_box, replay_fingerprint
from hwotp.replay_check import DEFAULT_THRESHOLD, similarities
from training import data, split


def replay_of(png: bytes, rng: np.random.Generator) -> bytes:
    image = Image.open(io.BytesIO(png))
    dx, dy = rng.integers(-2, 3, 2)
    image = image.transform(image.size, Image.Transform.AFFINE, (1, 0, int(dx), 0, 1, int(dy)), fillcolor=255)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(60, 96)))
    return buffer.getvalue()


def measure(digits: data.DigitSet, threshold: float, attempts_per_writer: int = 100, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pngs = [png_of(field) for field in digits.images]
    prints = np.stack([replay_fingerprint(decode_box(png)) for png in pngs])
    replays = np.stack([replay_fingerprint(decode_box(replay_of(png, rng))) for png in pngs])
    replay_similarity = np.array([similarities(replays[i : i + 1], prints[i : i + 1])[0] for i in range(len(pngs))])
    genuine_similarity = np.empty(len(pngs))
    for writer in np.unique(digits.writers):
        rows = np.flatnonzero(digits.writers == writer)
        for position, row in enumerate(rows):
            genuine_similarity[row] = similarities(prints[row : row + 1], np.delete(prints[rows], position, axis=0))[0]
    caught_box = genuine_similarity >= threshold
    caught_attempts = []
    for writer in np.unique(digits.writers):
        by_digit = [np.flatnonzero((digits.writers == writer) & (digits.digits == d)) for d in range(10)]
        present = [d for d in range(10) if len(by_digit[d])]
        if len(present) < 6:
            continue
        for _ in range(attempts_per_writer):
            boxes = [rng.choice(by_digit[d]) for d in rng.choice(present, 6, replace=False)]
            caught_attempts.append(caught_box[boxes].any())
    return {
        "threshold": threshold,
        "writers": int(len(np.unique(digits.writers))),
        "boxes": int(len(pngs)),
        "replays_caught": float((replay_similarity >= threshold).mean()),
        "replay_similarity_min": float(replay_similarity.min()),
        "genuine_boxes_caught": float(caught_box.mean()),
        "genuine_6_digit_attempts_caught": float(np.mean(caught_attempts)),
        "genuine_6_digit_attempts": len(caught_attempts),
        "genuine_similarity_p99_9": float(np.percentile(genuine_similarity, 99.9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--writers", choices=["val", "test"], default="test")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--out", type=Path, default=Path("build/replay.json"))
    args = parser.parse_args()
    data.exit_if_missing(args.data)
    digits = data.load(args.data).of_writers(split.load_split()[args.writers])
    report = measure(digits, args.threshold)
    report["writer_part"] = args.writers
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
