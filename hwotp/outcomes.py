"""The words of a login, one per concept, shared by the challenge service and the gateway:
a challenge issued, a claim of it and its status, a user's lockout state, the reason a
submission ends with.

Each is mapped to protobuf once, at the edge that speaks protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Where a box's ink came from: an image, or a touchscreen's strokes the gateway rendered.
SCAN, STROKES = "scan", "strokes"


class ClaimStatus(Enum):
    """What claiming a challenge found (the challenge store's scripts answer these words)."""

    CLAIMED = "claimed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ALREADY_USED = "used"
    LOCKED = "locked"  # the factor is disabled; not consumed
    THROTTLED = "throttled"  # too soon after failures; not consumed, not counted
    WRONG_LENGTH = "wrong_length"  # the answer's box count does not fit; not consumed, not counted
    SIGNATURE_UNFIT = "signature_unfit"  # the last box cannot be a signature; not consumed, not counted


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


@dataclass(frozen=True)
class Issued:
    challenge_id: str
    digits: str
    expires_at_ms: int
    time_limit_s: int
    stepped_up: bool = False
    signature: bool = False  # the answer ends with the user's signature


@dataclass(frozen=True)
class Claim:
    status: ClaimStatus
    digits: str = ""
    expires_at_ms: int = 0
    failures: int = 0  # counted, this claim included, until a success
    throttling: bool = False  # so many that the next attempt waits (a lockout event)
    disabled: bool = False
    stepped_up: bool = False
    retry_after_ms: int = 0  # THROTTLED
    length: int = 0  # WRONG_LENGTH: the challenge's boxes
    signature: bool = False  # the last box is the user's signature


@dataclass(frozen=True)
class Lockout:
    failures: int
    disabled: bool
