"""Turn dataset digits into what a client sends: PNG boxes of a touchscreen's size."""

from __future__ import annotations

import numpy as np

from hwotp.canvas import png_of
from hwotp.ink import prepare_strokes
from hwotp.strokes import to_arrays
from hwotp.trajectory import path_features
from hwotp.v1 import gateway_pb2, handwriting_pb2


def handwriting(field: np.ndarray) -> handwriting_pb2.Handwriting:
    return handwriting_pb2.Handwriting(image=png_of(field))


def enrolment_request(user_id: str, fields: np.ndarray, digits: np.ndarray) -> gateway_pb2.EnrollRequest:
    return gateway_pb2.EnrollRequest(user_id=user_id, samples=[
        handwriting_pb2.LabeledDigit(digit=int(d), handwriting=handwriting(f)) for f, d in zip(fields, digits)])


class Writer:
    """One dataset writer's digits, split as the evaluation protocol does: enrolment first, then probes."""

    def __init__(self, images: np.ndarray, digits: np.ndarray, enrol_per_digit: int = 3):
        self.enrol_index = np.concatenate([np.flatnonzero(digits == d)[:enrol_per_digit] for d in range(10)])
        self.probes = {d: np.flatnonzero(digits == d)[enrol_per_digit:] for d in range(10)}
        self.images, self.digits = images, digits

    def enrolment(self, user_id: str) -> gateway_pb2.EnrollRequest:
        return enrolment_request(user_id, self.images[self.enrol_index], self.digits[self.enrol_index])

    def fields(self, rows) -> np.ndarray:
        """The model inputs of these samples, as the server computes them."""
        return self.images[rows][:, None]

    def write(self, digits: str, rng: np.random.Generator | None = None) -> list[handwriting_pb2.Handwriting]:
        """Write a challenge in this writer's hand: a random probe of each digit, or
        without rng always the same one (reproducible boxes)."""
        return [handwriting(self.images[rng.choice(self.probes[int(c)]) if rng else self.probes[int(c)][0]])
                for c in digits]


def box_strokes(strokes: list[np.ndarray], box: float = 280.0, step_ms: float = 10.0) -> list[handwriting_pb2.Stroke]:
    """Pen strokes (any unit, y down) as a touchscreen client sends them: fitted into a box of
    `box` pixels with a margin, keeping their shape, on whole pixels, a point every `step_ms`."""
    every = np.concatenate([s[:, :2] for s in strokes])
    low, span = every.min(axis=0), max(float(np.ptp(every, axis=0).max()), 1e-6)
    scale, t = 0.8 * box / span, 0.0
    out = []
    for stroke in strokes:
        points = []
        for x, y in np.round((stroke[:, :2] - low) * scale + 0.1 * box):
            points.append(handwriting_pb2.Point(x=float(x), y=float(y), t_ms=t))
            t += step_ms
        out.append(handwriting_pb2.Stroke(points=points))
    return out


class StrokeWriter:
    """One stroke-set writer's digits (training.strokes), sent as strokes only, split as
    `Writer` splits: enrolment first, then probes."""

    def __init__(self, strokes: list[list[np.ndarray]], digits: np.ndarray, enrol_per_digit: int = 3):
        self.strokes, self.digits = strokes, digits
        self.enrol_index = np.concatenate([np.flatnonzero(digits == d)[:enrol_per_digit] for d in range(10)])
        self.probes = {d: np.flatnonzero(digits == d)[enrol_per_digit:] for d in range(10)}

    def box(self, index: int) -> handwriting_pb2.Handwriting:
        return handwriting_pb2.Handwriting(strokes=box_strokes(self.strokes[index]))

    def _sent(self, index: int) -> list[np.ndarray]:
        """A sample's strokes as the server receives them."""
        return to_arrays(self.box(index).strokes, f"sample {index}")

    def fields(self, rows) -> np.ndarray:
        """The model inputs of these samples, as the server renders them."""
        return np.stack([prepare_strokes(self._sent(i))[0] for i in rows])[:, None]

    def paths(self, rows) -> np.ndarray:
        """The online model's inputs of these samples, as the server computes them."""
        return np.stack([path_features(self._sent(i)) for i in rows])

    def enrolment(self, user_id: str) -> gateway_pb2.EnrollRequest:
        return gateway_pb2.EnrollRequest(user_id=user_id, samples=[
            handwriting_pb2.LabeledDigit(digit=int(self.digits[i]), handwriting=self.box(i)) for i in self.enrol_index])

    def write(self, digits: str, rng: np.random.Generator | None = None) -> list[handwriting_pb2.Handwriting]:
        return [self.box(rng.choice(self.probes[int(c)]) if rng is not None else self.probes[int(c)][0])
                for c in digits]


def signature_box(strokes: list[np.ndarray], scale: float = 0.5) -> handwriting_pb2.Handwriting:
    """A signature's strokes ((n, 6) x, y, t_ms, pressure, azimuth, altitude, as
    training.signatures.strokes_of gives them) as one box a client sends; `scale` brings tablet
    units within the box limits."""
    return handwriting_pb2.Handwriting(strokes=[handwriting_pb2.Stroke(points=[
        handwriting_pb2.Point(x=float(x * scale), y=float(y * scale), t_ms=float(t), pressure=float(p),
                              azimuth=float(azimuth), altitude=float(altitude))
        for x, y, t, p, azimuth, altitude in stroke]) for stroke in strokes])
