"""The words for how a login ends, one enum per concept, shared by the services and the gateway.

Each is mapped to its protobuf enum once, at the edge that speaks protobuf.
"""

from __future__ import annotations

from enum import Enum


class ClaimStatus(Enum):
    """What claiming a challenge found (the challenge store's scripts answer these words)."""

    CLAIMED = "claimed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ALREADY_USED = "used"
    LOCKED = "locked"  # the factor is disabled; not consumed
    THROTTLED = "throttled"  # too soon after failures; not consumed, not counted
    WRONG_LENGTH = "wrong_length"  # the answer's box count does not fit; not consumed, not counted


class Reason(Enum):
    """Why a submission was accepted or rejected."""

    ACCEPTED = "accepted"
    WRONG_DIGITS = "wrong_digits"
    WRITER_MISMATCH = "writer_mismatch"
    EXPIRED = "expired"
    UNKNOWN_CHALLENGE = "unknown_challenge"
    ALREADY_USED = "already_used"
    LOCKED = "locked"
    NOT_ENROLLED = "not_enrolled"
    REPLAY = "replay"
