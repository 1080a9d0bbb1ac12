"""Online signatures in the SVC2004 format, as strokes the gateway takes.

A file `U{u}S{s}.TXT` holds one signature: the number of points, then one row
per point, `X Y TIMESTAMP BUTTON AZIMUTH ALTITUDE PRESSURE` (100 Hz). Of each
user, S1-S20 are genuine and S21-S40 skilled forgeries.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

GENUINE = range(1, 21)
FORGERIES = range(21, 41)
PRESSURE_LEVELS = 1023.0  # the tablet's
DEGREE_TENTHS = np.pi / 1800  # azimuth and altitude come in tenths of a degree
_NAME = re.compile(r"U(\d+)S(\d+)\.TXT$", re.IGNORECASE)


def read_signatures(source: Path) -> dict[tuple[int, int], np.ndarray]:
    """{(user, signature): (n, 7) rows} of every U{u}S{s}.TXT in a folder (and its subfolders) or
    a zip archive."""
    source = Path(source)
    if source.suffix.lower() == ".zip":
        with zipfile.ZipFile(source) as archive:
            files = [(name, archive.read(name)) for name in archive.namelist()]
    else:
        files = [(path.name, path.read_bytes()) for path in sorted(source.rglob("*")) if path.is_file()]
    out = {}
    for name, raw in files:
        match = _NAME.search(name)
        if match:
            rows = np.loadtxt(io.BytesIO(raw), skiprows=1, ndmin=2)
            if rows.shape[1] < 7 or len(rows) < 2:
                raise ValueError(f"{name}: not an SVC2004 signature (a count, then rows of 7 numbers)")
            out[(int(match.group(1)), int(match.group(2)))] = rows
    if not out:
        raise ValueError(f"no U{{u}}S{{s}}.TXT signatures in {source}")
    return out


def strokes_of(rows: np.ndarray) -> list[np.ndarray]:
    """SVC2004 rows -> strokes as the gateway takes them: (n, 6) x, y (down, as on a screen:
    the tablet's y points up), t_ms from the first point, pressure in [0, 1], azimuth and
    altitude in radians; a row with the pen up (BUTTON 0) ends a stroke."""
    t = rows[:, 2] - rows[0, 2]
    points = np.stack([rows[:, 0], rows[:, 1].max() - rows[:, 1], t, np.clip(rows[:, 6] / PRESSURE_LEVELS, 0, 1),
                       np.clip(rows[:, 4] * DEGREE_TENTHS, 0, 2 * np.pi),
                       np.clip(rows[:, 5] * DEGREE_TENTHS, 0, np.pi / 2)], axis=1)
    down = rows[:, 3] > 0
    strokes, current = [], []
    for point, is_down in zip(points, down):
        if is_down:
            current.append(point)
        elif current:
            strokes.append(np.array(current))
            current = []
    if current:
        strokes.append(np.array(current))
    return strokes
