"""The authentication decision: a pure function of what the services found."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Sequence


class Reason(Enum):
    ACCEPTED = "accepted"
    WRONG_DIGITS = "wrong_digits"
    WRITER_MISMATCH = "writer_mismatch"
    EXPIRED = "expired"
    REPLAY = "replay"


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    reason: Reason


def decide(expected: str, recognised: Sequence[int], writer_ok: bool, arrived_ms: int, expires_at_ms: int,
           replayed: bool = False) -> Outcome:
    """ACCEPT only if the answer arrived in time, holds no replayed box, every box
    holds the challenge digit at its position, and the writer check passed."""
    if arrived_ms > expires_at_ms:
        return Outcome(False, Reason.EXPIRED)
    if replayed:
        return Outcome(False, Reason.REPLAY)
    if len(recognised) != len(expected) or any(int(c) != int(d) for c, d in zip(expected, recognised)):
        return Outcome(False, Reason.WRONG_DIGITS)
    if not writer_ok:
        return Outcome(False, Reason.WRITER_MISMATCH)
    return Outcome(True, Reason.ACCEPTED)
