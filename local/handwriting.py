"""Turn dataset digits into what a client sends: PNG boxes of a touchscreen's size."""

from __future__ import annotations

import numpy as np

from hwotp.canvas import png_of
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

    def write(self, digits: str, rng: np.random.Generator | None = None) -> list[handwriting_pb2.Handwriting]:
        """Write a challenge in this writer's hand: a random probe of each digit, or
        without rng always the same one (reproducible boxes)."""
        return [handwriting(self.images[rng.choice(self.probes[int(c)]) if rng else self.probes[int(c)][0]])
                for c in digits]
