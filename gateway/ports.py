"""What the login flow asks of the internal services: three small interfaces that speak
dataclasses and domain errors (hwotp.errors), never protobuf or gRPC.

gateway.downstream implements them over gRPC; unit tests drive the flow with fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from gateway.budget import Budget
from hwotp.outcomes import Claim, Issued, Lockout


@dataclass(frozen=True)
class Written:
    """One box as the client sent it: its strokes (the server renders them, and they win), or
    else its image."""

    image: bytes = b""
    strokes: list[np.ndarray] | None = None
    trajectory: bytes = b""  # the strokes with their timing and pressure: a serialized hwotp.v1.Handwriting
    fits_signature: bool = False  # the strokes can be a signature (hwotp.signature.problem)


@dataclass(frozen=True)
class Prepared:
    """Boxes decoded once: (n, 1, 28, 28) model inputs, (n, 1024) replay fingerprints and,
    when every box came as strokes, their (n, CHANNELS, POINTS) pen paths (hwotp.trajectory)."""

    fields: np.ndarray
    fingerprints: np.ndarray
    domain: str = "scan"  # hwotp.models.SCAN or STROKES: how every box came
    paths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.fields)

    def first(self, count: int) -> "Prepared":
        """The first `count` boxes (the digits of an answer that ends with a signature)."""
        paths = self.paths[:count] if self.paths is not None else None
        return Prepared(self.fields[:count], self.fingerprints[:count], self.domain, paths)


@dataclass(frozen=True)
class Reading:
    digit: int
    confidence: float


@dataclass(frozen=True)
class Enrolment:
    enrolled: bool
    current: bool = False  # the templates belong to the model now served
    fixed_length: int = 0  # the only length the user's secret scheme fits (0: any)
    display_templates: bool = False  # shown with each challenge
    signature: bool = False  # a signature is enrolled


@dataclass(frozen=True)
class Enrolled:
    model_version: str
    samples: int


@dataclass(frozen=True)
class Verdict:
    writer_ok: bool
    expected: str  # the digits the boxes must hold, after the secret repositioning
    replayed: list[bool]
    near_miss: bool = False
    scores: list[float] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)
    policy: str = ""
    modalities: str = ""  # what judged the writer (audit only)


@dataclass(frozen=True)
class SignatureVerdict:
    passed: bool
    replayed: bool
    score: float  # audit only


class Challenges(Protocol):
    # signature: "none", "with" the digits or "only"; signature_enrolled: a step-up adds it
    def create(self, subject: str, length: int, caller: str, fixed_length: int, budget: Budget,
               signature: str = "none", signature_enrolled: bool = False) -> Issued: ...
    def claim(self, subject: str, challenge_id: str, boxes: int, budget: Budget,
              last_box_fits_signature: bool = False) -> Claim: ...
    def record_success(self, subject: str, stepped_up: bool, budget: Budget) -> str: ...
    def forgive(self, subject: str, budget: Budget) -> None: ...
    def step_up(self, subject: str, budget: Budget) -> None: ...
    def reset_lockout(self, subject: str, budget: Budget) -> Lockout: ...
    def redeem_owner_token(self, subject: str, token: str, budget: Budget) -> bool: ...
    def forget(self, subject: str, budget: Budget) -> None: ...


class Recognizer(Protocol):
    def recognize(self, boxes: Prepared, budget: Budget) -> list[Reading]: ...


class Verifier(Protocol):
    def enrol(self, subject: str, boxes: Prepared, digits: list[int], originals: list[bytes],
              trajectories: list[bytes], display_samples: list[int], replace: bool, budget: Budget) -> Enrolled: ...
    def enrolment(self, subject: str, budget: Budget) -> Enrolment: ...
    # Both return at once and are awaited by calling what they return, so that the
    # flow can ask the recognizer (or the challenge service) meanwhile.
    def verify(self, subject: str, boxes: Prepared, displayed: list[int], budget: Budget,
               strict: bool = False) -> Callable[[], Verdict]: ...
    def remember_accepted(self, subject: str, boxes: Prepared, budget: Budget) -> Callable[[], None]: ...
    def delete(self, subject: str, budget: Budget) -> bool: ...
    def set_repositioning(self, subject: str, scheme: str, budget: Budget) -> bool: ...
    def display_templates(self, subject: str, digits: list[int], budget: Budget) -> list[bytes]: ...
    # signatures: serialized hwotp.v1.Handwriting messages (their strokes)
    def enrol_signature(self, subject: str, signatures: list[bytes], budget: Budget) -> Enrolled: ...
    def verify_signature(self, subject: str, signature: bytes, budget: Budget) -> Callable[[], SignatureVerdict]: ...
    def remember_signature(self, subject: str, signature: bytes, budget: Budget) -> Callable[[], None]: ...
