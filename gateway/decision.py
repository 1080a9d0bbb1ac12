"""The authentication decision: a pure function of what the services found."""

from __future__ import annotations

from typing import Sequence

from hwotp.outcomes import Reason


def decide(expected: str, recognised: Sequence[int], writer_ok: bool, arrived_ms: int, expires_at_ms: int,
           replayed: bool = False) -> Reason:
    """ACCEPTED only if the answer arrived in time, holds no replayed box, every box
    holds the challenge digit at its position, and the writer check passed."""
    if arrived_ms > expires_at_ms:
        return Reason.EXPIRED
    if replayed:
        return Reason.REPLAY
    if len(recognised) != len(expected) or any(int(c) != int(d) for c, d in zip(expected, recognised)):
        return Reason.WRONG_DIGITS
    if not writer_ok:
        return Reason.WRITER_MISMATCH
    return Reason.ACCEPTED
