"""Shape checks of public requests: bad input is INVALID_ARGUMENT with a message that says what is wrong."""

from __future__ import annotations

import re
from collections import Counter

from hwotp import signature, strokes
from gateway.ports import Written
from hwotp.config import GatewaySettings
from hwotp.errors import InvalidInput
from hwotp.v1 import handwriting_pb2

MAX_BOXES = 11  # 10 digits and a signature
_USER_ID = re.compile(r"[\x21-\x7e]{1,128}")
_CHALLENGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def user_id(value: str) -> str:
    if not value:
        raise InvalidInput("user_id is missing")
    if not _USER_ID.fullmatch(value):
        raise InvalidInput("user_id must be 1-128 printable ASCII characters without spaces")
    return value


def challenge_id(value: str) -> str:
    if not value:
        raise InvalidInput("challenge_id is missing")
    if not _CHALLENGE_ID.fullmatch(value):
        raise InvalidInput("challenge_id is malformed")
    return value


def owner_token(value: str) -> str:
    if not _OWNER_TOKEN.fullmatch(value):
        raise InvalidInput("owner_token is malformed")
    return value


def written(handwriting, where: str) -> Written:
    """A box's strokes (checked; the server renders them) or else its image."""
    if handwriting.strokes:
        arrays = strokes.to_arrays(handwriting.strokes, where)
        trajectory = handwriting_pb2.Handwriting(strokes=handwriting.strokes).SerializeToString()
        return Written(handwriting.image, arrays, trajectory, signature.problem(arrays) is None)
    if not handwriting.image:
        raise InvalidInput(f"{where}: neither strokes nor an image")
    return Written(handwriting.image)


def submission_boxes(boxes) -> list[Written]:
    if not 1 <= len(boxes) <= MAX_BOXES:
        raise InvalidInput(f"{len(boxes)} boxes given; a challenge has 1 to {MAX_BOXES} (4-10 digits, a signature)")
    return [written(box, f"box {index}") for index, box in enumerate(boxes)]


def enrolment_samples(samples, settings: GatewaySettings) -> tuple[list[Written], list[int]]:
    limit = 10 * settings.enrol_max_per_digit
    if len(samples) > limit:
        raise InvalidInput(f"{len(samples)} samples given; at most {limit} ({settings.enrol_max_per_digit} per digit)")
    for index, sample in enumerate(samples):
        if sample.digit > 9:
            raise InvalidInput(f"sample {index}: digit {sample.digit} is not 0-9")
    boxes = [written(sample.handwriting, f"sample {index}") for index, sample in enumerate(samples)]
    counts = Counter(sample.digit for sample in samples)
    short = [d for d in range(10) if counts[d] < settings.enrol_min_per_digit]
    if short:
        raise InvalidInput(f"at least {settings.enrol_min_per_digit} samples of every digit are needed; "
                           f"too few of {short}")
    over = [d for d in range(10) if counts[d] > settings.enrol_max_per_digit]
    if over:
        raise InvalidInput(f"at most {settings.enrol_max_per_digit} samples per digit; too many of {over}")
    return boxes, [int(s.digit) for s in samples]


def display_samples(request) -> list[int]:
    """Indexes of the samples designated as display templates: valid, at most one per digit."""
    chosen = list(request.display_samples)
    if any(index >= len(request.samples) for index in chosen):
        raise InvalidInput(f"display_samples must index the {len(request.samples)} samples")
    digits = [request.samples[index].digit for index in chosen]
    if len(set(digits)) != len(digits):
        raise InvalidInput("at most one display sample per digit")
    return chosen


def signatures(signed) -> list[bytes]:
    """An enrolment's signatures: each strokes that can be a signature; serialized."""
    if len(signed) != signature.REFERENCES:
        raise InvalidInput(f"{len(signed)} signatures given; a signature enrolment takes {signature.REFERENCES}")
    kept = []
    for index, handwriting in enumerate(signed):
        where = f"signature {index}"
        if not handwriting.strokes:
            raise InvalidInput(f"{where}: a signature must come as strokes")
        box = written(handwriting, where)
        if not box.fits_signature:
            raise InvalidInput(f"{where}: {signature.problem(box.strokes)}")
        kept.append(box.trajectory)
    return kept
