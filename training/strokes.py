"""Stroke sets: online digits of any source in one file format, read back as model inputs.

The format is JSON Lines, one sample per line:

    {"writer": "lab/17", "digit": 3, "strokes": [[[x, y], ...], [[x, y, t_ms, pressure], ...]]}

Points are [x, y], [x, y, t_ms] or [x, y, t_ms, pressure], in screen
coordinates (y pointing down), any unit; a stroke is one pen-down trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwotp.ink import prepare_strokes
from hwotp.trajectory import path_features
from training import data


@dataclass
class StrokeSample:
    writer: str
    digit: int
    strokes: list[np.ndarray]  # each (n, 2..4) float32: x, y[, t_ms[, pressure]]


def exit_if_missing(path: Path) -> None:
    """Stop a command that needs a stroke set before it does any work, saying where it comes from."""
    if not Path(path).exists():
        raise SystemExit(f"error: no stroke set at {path}: `make data` writes it from the UNIPEN archive")


def write_stroke_set(samples: list[StrokeSample], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for s in samples:
            out.write(json.dumps({"writer": s.writer, "digit": s.digit,
                                  "strokes": [np.round(stroke, 2).tolist() for stroke in s.strokes]}) + "\n")


def read_stroke_set(path: Path) -> list[StrokeSample]:
    samples = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            strokes = [np.asarray(stroke, dtype=np.float32).reshape(len(stroke), -1) for stroke in item["strokes"]]
            if not 0 <= int(item["digit"]) <= 9 or not strokes or any(s.shape[1] < 2 for s in strokes):
                raise ValueError(f"{path}:{number}: not a stroke-set sample (digit 0-9, strokes of [x, y, ...])")
            samples.append(StrokeSample(str(item["writer"]), int(item["digit"]), strokes))
    return samples


# Stroke-set writers get keys apart from the scans' (series * 10000 + NIST id), and a series of their own.
WRITER_KEY_BASE = 10_000_000
ONLINE_SERIES = 9
SPLIT_FILE = data.REPO_ROOT / "models" / "unipen-split.json"


def digit_set(samples: list[StrokeSample]) -> tuple[data.DigitSet, list[str]]:
    """The samples rendered as the server renders them, as a DigitSet; and the writers' names,
    whose positions give their keys (WRITER_KEY_BASE + position)."""
    names = sorted({s.writer for s in samples})
    key = {name: WRITER_KEY_BASE + i for i, name in enumerate(names)}
    fields = np.empty((len(samples), 28, 28), dtype=np.float32)
    for i, sample in enumerate(samples):
        fields[i] = prepare_strokes([stroke[:, :2] for stroke in sample.strokes])[0]
    digits = np.array([s.digit for s in samples], dtype=np.int64)
    writers = np.array([key[s.writer] for s in samples], dtype=np.int64)
    return data.DigitSet(fields, digits, np.full(len(samples), ONLINE_SERIES, dtype=np.int64), writers), names


# Training sees strokes drawn with other pens and sampled more sparsely than the renderer's default.
PEN_WIDTHS = (0.08, 0.11, 0.15)
POINT_STEPS = (1, 2)


def augmented(samples: list[StrokeSample], names: list[str]) -> data.DigitSet:
    """Every sample rendered with each pen width and point density (training only)."""
    key = {name: WRITER_KEY_BASE + i for i, name in enumerate(names)}
    fields, digits, writers = [], [], []
    for sample in samples:
        for width in PEN_WIDTHS:
            for step in POINT_STEPS:
                thinned = [stroke[::step, :2] if len(stroke) > 2 * step else stroke[:, :2] for stroke in sample.strokes]
                fields.append(prepare_strokes(thinned, width)[0])
                digits.append(sample.digit)
                writers.append(key[sample.writer])
    n = len(fields)
    return data.DigitSet(np.stack(fields), np.array(digits, dtype=np.int64), np.full(n, ONLINE_SERIES, dtype=np.int64),
                         np.array(writers, dtype=np.int64))


def load_parts(path: Path, augment: bool = False) -> tuple[dict[str, data.DigitSet], dict[str, data.DigitSet]]:
    """The stroke set's split parts (models/unipen-split.json) as served ("train", "val",
    "test"), and with `augment` the training part augmented ("train")."""
    samples = read_stroke_set(path)
    rendered, names = digit_set(samples)
    split = load_split()
    parts = {part: rendered.of_writers(keys_of(names, writers)) for part, writers in split.items()}
    if not augment:
        return parts, {}
    train_names = set(split["train"])
    return parts, {"train": augmented([s for s in samples if s.writer in train_names], names)}


def samples_of(samples: list[StrokeSample], part: str) -> list[StrokeSample]:
    """The samples of one part of the split ("train", "val", "test"), in file order."""
    wanted = set(load_split()[part])
    return [s for s in samples if s.writer in wanted]


def paths_of(samples: list[StrokeSample]) -> np.ndarray:
    """The samples' pen paths as the server computes them, (n, CHANNELS, POINTS) float32."""
    return np.stack([path_features(s.strokes) for s in samples])


def keys_of(names: list[str], wanted) -> list[int]:
    """The keys of the named writers (those not in the set are left out)."""
    position = {name: i for i, name in enumerate(names)}
    return [WRITER_KEY_BASE + position[name] for name in wanted if name in position]


def load_split(path: Path = SPLIT_FILE) -> dict[str, list[str]]:
    return json.loads(path.read_text())["writers"]


def make_split(names: list[str], seed: int) -> dict[str, list[str]]:
    """Writer-disjoint train / val / test, stratified by the part of a name before "/" (the lab)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for lab in sorted({n.split("/")[0] for n in names}):
        members = np.array(sorted(n for n in names if n.split("/")[0] == lab))
        rng.shuffle(members)
        n_val, n_test = round(len(members) * 0.15), round(len(members) * 0.15)
        parts["val"] += members[:n_val].tolist()
        parts["test"] += members[n_val:n_val + n_test].tolist()
        parts["train"] += members[n_val + n_test:].tolist()
    return {name: sorted(keys) for name, keys in parts.items()}
