"""UNIPEN 1a (isolated digits) -> the stroke-set format (training.strokes), writers kept.

python -m training.unipen [--archive FILE] [--out FILE] [--write-split]

--write-split draws a new writer-disjoint split (models/unipen-split.json,
stratified by lab); without it the committed split stays.

Reads the archive as it is (../shared/data/unipen-1a.tar.xz, $HWOTP_UNIPEN, or the one named)
without unpacking it. Each `.SEGMENT CHARACTER` line of data/1a/**.dat names
`.PEN_DOWN` blocks of the data files it includes, counted from 0 (a block of
the single point "0 0" is a placeholder: it counts, and draws nothing; one lab
counts `.PEN_UP` blocks too, and one is left out: see PEN_UP_COUNTING_LABS);
each named pen-down block is one stroke of the digit.
UNIPEN's y axis points up: it is flipped to screen coordinates. Segments that
cut blocks at points (`N:P-M:Q`, a few dozen) are left out. A writer is a
person (SESSION_IDS), and a digit's ink is read once (distinct).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np

from training import data
from training import strokes
from training.strokes import StrokeSample, read_stroke_set, write_stroke_set

def default_archive() -> Path:
    """$HWOTP_UNIPEN, else beside the digit data directory ($HWOTP_DATA_DIR's parent, or ../shared/data)."""
    if os.environ.get("HWOTP_UNIPEN"):
        return Path(os.environ["HWOTP_UNIPEN"])
    scans = os.environ.get("HWOTP_DATA_DIR")
    return (Path(scans).parent if scans else data.SHARED_DATA_DIR.parent) / "unipen-1a.tar.xz"


SPLIT_SOURCE = "UNIPEN train_r01_v07 1a, writers as lab/WRITER_ID (IBM's session ids as their writer)"
STROKE_SET = data.REPO_ROOT / "build" / "unipen-1a.jsonl"  # what `make data` and training read
# Labs count segments' pen blocks their own way; checked by reading, the scans' recognizer
# reads 95-100% of each lab's digits so cut (and 7-53% otherwise). "pri" counts `.PEN_UP`
# blocks too. No rule tried (every block, non-empty blocks, pen-down blocks, one off)
# cuts "tos" digits out of its files (at most 53% read): its 243 digits are left out.
PEN_UP_COUNTING_LABS = {"pri"}
UNREADABLE_LABS = {"tos"}
# Labs whose `.WRITER_ID`s name a writer's session, not the writer: IBM's documentation
# (include/ibm/ibm0.doc) counts 12 writers and several sessions each, and its 22 ids
# "rSS-WW" are session SS of writer WW (12 distinct WW). Read as writers, one person's
# sessions counted as impostors of each other and sat on both sides of the split.
SESSION_IDS = {"ibm": re.compile(r"^r\d+-(\d+)$")}
_SEGMENT = re.compile(r'^\.SEGMENT\s+CHARACTER\s+(\S+)\s+\S+\s+"(\d)"')


def _blocks(text: str, pen_up_counts: bool) -> tuple[str, list[np.ndarray | None]]:
    """The writer id and the numbered pen blocks of an included data file, in order: a
    `.PEN_DOWN` block's points, a placeholder ("0 0") as an empty array, and, where the lab
    counts them, a `.PEN_UP` block as None (it draws nothing)."""
    writer, blocks, points, kind = "", [], [], None

    def close():
        if kind == ".PEN_DOWN":
            placeholder = len(points) == 1 and points[0] == (0.0, 0.0)
            blocks.append(np.array([] if placeholder else points, dtype=np.float32).reshape(-1, 2))
        elif kind == ".PEN_UP" and pen_up_counts:
            blocks.append(None)

    for line in text.splitlines():
        if line.startswith("."):
            close()
            word = line.split(maxsplit=1)
            kind, points = word[0] if word[0] in (".PEN_DOWN", ".PEN_UP") else None, []
            if word[0] == ".WRITER_ID" and len(word) > 1:
                writer = word[1].strip()
            continue
        values = line.split()
        if kind == ".PEN_DOWN" and len(values) >= 2:
            try:
                points.append((float(values[0]), float(values[1])))
            except ValueError:
                pass
    close()
    return writer, blocks


def _range(spec: str) -> range | None:
    if ":" in spec or "," in spec:
        return None
    first, _, last = spec.partition("-")
    return range(int(first), int(last or first) + 1)


def writer_name(lab: str, writer_id: str) -> str:
    """The person behind a `.WRITER_ID`, named "lab/id": a session id names its writer."""
    session = SESSION_IDS.get(lab)
    match = session.match(writer_id) if session else None
    return f"{lab}/{match.group(1) if match else writer_id}"


def read_archive(archive: Path) -> list[StrokeSample]:
    samples = []
    with tarfile.open(archive) as tar:  # read once, in order: an xz archive has no cheap seeking
        files = {m.name: tar.extractfile(m).read().decode("latin-1") for m in tar if m.isfile()}
    root = next(name.split("/data/1a/")[0] for name in files if "/data/1a/" in name)
    for name in sorted(n for n in files if "/data/1a/" in n and n.endswith(".dat")):
        text = files[name]
        lab = name.split("/data/1a/")[1].split("/")[0]
        if lab in UNREADABLE_LABS:
            continue
        includes = [line.split()[1] for line in text.splitlines() if line.startswith(".INCLUDE")]
        writer, blocks = "", []
        for include in includes:
            included = files.get(f"{root}/include/{include}")
            if included is None:
                continue
            found_writer, found = _blocks(included, lab in PEN_UP_COUNTING_LABS)
            writer, blocks = writer or found_writer, blocks + found
        writer = writer_name(lab, writer or Path(name).stem)
        for line in text.splitlines():
            match = _SEGMENT.match(line)
            span = _range(match.group(1)) if match else None
            if span is None or span.stop > len(blocks):
                continue
            strokes = [blocks[i] for i in span if blocks[i] is not None and len(blocks[i])]
            if strokes:
                flipped = [np.column_stack([s[:, 0], -s[:, 1]]) for s in strokes]  # y up -> y down
                samples.append(StrokeSample(writer, int(match.group(2)), flipped))
    return distinct(samples)


def distinct(samples: list[StrokeSample]) -> list[StrokeSample]:
    """The samples without repeats of the same ink: some files repeat digits of others (IBM's
    sessions repeat over two hundred), and a repeat as a probe would match its enrolled twin exactly.
    Ink found under two writers is left out: whose it is cannot be told."""
    by_ink: dict[tuple, list[int]] = {}
    for i, sample in enumerate(samples):
        ink = (sample.digit, tuple(stroke.tobytes() for stroke in sample.strokes))
        by_ink.setdefault(ink, []).append(i)
    # in the order first read: the dictionary keeps each ink where it was first found
    return [samples[found[0]] for found in by_ink.values() if len({samples[i].writer for i in found}) == 1]


def samples() -> list[StrokeSample]:
    """UNIPEN's digits: from the stroke set `make data` writes, else read from the archive."""
    if STROKE_SET.exists():
        return read_stroke_set(STROKE_SET)
    return read_archive(default_archive())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=None, help="default: $HWOTP_UNIPEN, else beside the digit data")
    parser.add_argument("--out", type=Path, default=STROKE_SET)
    parser.add_argument("--write-split", action="store_true")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    args.archive = args.archive or default_archive()
    if not args.archive.exists():
        raise SystemExit(f"no UNIPEN archive at {args.archive}. UNIPEN train_r01_v07 is public on Zenodo "
                         f"(https://doi.org/10.5281/zenodo.1195803, CC BY 4.0); pass its 1a digits as --archive "
                         f"FILE (a tar.xz holding data/1a/ and include/), or set HWOTP_UNIPEN")
    samples = read_archive(args.archive)
    write_stroke_set(samples, args.out)
    names = sorted({s.writer for s in samples})
    print(f"wrote {args.out}: {len(samples)} digits of {len(names)} writers")
    if args.write_split:
        parts = strokes.make_split(names, args.seed)
        document = {"seed": args.seed, "source": SPLIT_SOURCE,
                    "counts": {name: len(keys) for name, keys in parts.items()}, "writers": parts}
        strokes.SPLIT_FILE.write_text(json.dumps(document, indent=1) + "\n")
        print(f"wrote {strokes.SPLIT_FILE}: {document['counts']}")


if __name__ == "__main__":
    main()
