"""Secret digit repositioning: the user writes the displayed challenge in a secretly
permuted order, so that what an onlooker sees on the screen is not the answer.

Schemes: "reverse"; "rotate:K" (start at the K-th displayed digit and wrap
around); "swap-pairs" (1st<->2nd, 3rd<->4th, ...); "perm:i0,i1,..." (box j holds
the displayed digit i_j; fits only challenges of that length).
"""

from __future__ import annotations

from hwotp.errors import FailedPrecondition, InvalidInput


def order(scheme: str, length: int) -> list[int]:
    """For each box, the position of the displayed digit to write in it."""
    name, _, argument = scheme.partition(":")
    if name == "reverse" and not argument:
        return list(range(length - 1, -1, -1))
    if name == "swap-pairs" and not argument:
        return [i ^ 1 if (i ^ 1) < length else i for i in range(length)]
    if name == "rotate" and argument.isdigit() and 1 <= int(argument) <= 9:
        return [(i + int(argument)) % length for i in range(length)]
    if name == "perm" and argument:
        try:
            positions = [int(p) for p in argument.split(",")]
        except ValueError:
            raise InvalidInput(f"repositioning scheme {scheme!r}: positions must be integers") from None
        if sorted(positions) != list(range(len(positions))) or not 4 <= len(positions) <= 10:
            raise InvalidInput(f"repositioning scheme {scheme!r} is not a permutation of 0..n-1 with n 4-10")
        if len(positions) != length:
            # no lengths named: the message must not reveal the scheme to a caller
            raise FailedPrecondition("the user's secret repositioning does not fit this challenge's length")
        return positions
    raise InvalidInput(f"unknown repositioning scheme {scheme!r}: reverse, rotate:K (1-9), swap-pairs or perm:i0,i1,...")


def fixed_length(scheme: str) -> int:
    """The only challenge length a scheme fits (a perm), 0 when it fits any."""
    return len(scheme.partition(":")[2].split(",")) if scheme.startswith("perm:") else 0


def validate(scheme: str) -> str:
    """A scheme as stored: checked now, so that a bad one is refused when set."""
    order(scheme, fixed_length(scheme) or 6)
    return scheme


def apply(scheme: str, displayed: str) -> str:
    """The digits as the user must write them, box by box."""
    return "".join(displayed[i] for i in order(scheme, len(displayed)))
