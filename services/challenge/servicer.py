"""Challenge gRPC servicer: protobuf in, domain call, protobuf out."""

from __future__ import annotations

import math

from hwotp.config import Settings
from hwotp.errors import FailedPrecondition, InvalidInput, ResourceExhausted
from hwotp.v1 import challenge_pb2, challenge_pb2_grpc
from services.challenge.store import ChallengeStore, Lockout, Refused

_STATUS = {
    "claimed": challenge_pb2.CLAIM_STATUS_CLAIMED,
    "unknown": challenge_pb2.CLAIM_STATUS_UNKNOWN,
    "expired": challenge_pb2.CLAIM_STATUS_EXPIRED,
    "used": challenge_pb2.CLAIM_STATUS_ALREADY_USED,
    "locked": challenge_pb2.CLAIM_STATUS_LOCKED,
}


def _user(request) -> str:
    if not request.user_id:
        raise InvalidInput("user_id is missing")
    return request.user_id


def _state(lockout: Lockout) -> challenge_pb2.LockoutState:
    return challenge_pb2.LockoutState(consecutive_failures=lockout.failures, disabled=lockout.disabled)


def refusal(refused: Refused) -> Exception:
    seconds = math.ceil(refused.retry_after_ms / 1000)
    if refused.reason == "disabled":
        return FailedPrecondition("handwriting factor disabled after too many failed attempts; "
                                  "an administrator must reset it")
    if refused.reason == "throttled":
        return ResourceExhausted(f"too many failed attempts; retry in {seconds} s", seconds)
    return ResourceExhausted(f"challenge rate limit reached; retry in {seconds} s", seconds)


class ChallengeServicer(challenge_pb2_grpc.ChallengeServicer):
    def __init__(self, store: ChallengeStore, settings: Settings):
        self.store, self.settings = store, settings

    def Create(self, request, context):
        length = request.length or self.settings.challenge_length
        if not 4 <= length <= 10:
            raise InvalidInput(f"challenge length {length} is outside 4-10")
        issued = self.store.create(_user(request), length, self.settings.challenge_time_limit_s, request.caller)
        if isinstance(issued, Refused):
            raise refusal(issued)
        return challenge_pb2.CreateChallengeResponse(
            challenge_id=issued.challenge_id, digits=issued.digits,
            expires_at_ms=issued.expires_at_ms, time_limit_s=issued.time_limit_s, stepped_up=issued.stepped_up)

    def Claim(self, request, context):
        if not request.challenge_id:
            raise InvalidInput("challenge_id is missing")
        claim = self.store.claim(request.challenge_id, _user(request))
        return challenge_pb2.ClaimChallengeResponse(
            status=_STATUS[claim.status], digits=claim.digits, expires_at_ms=claim.expires_at_ms,
            consecutive_failures=claim.failures, disabled=claim.disabled, stepped_up=claim.stepped_up)

    def RecordSuccess(self, request, context):
        self.store.reset(_user(request), end_step_up=request.stepped_up)
        return _state(Lockout(0, False))

    def StepUp(self, request, context):
        self.store.step_up(_user(request))
        return _state(self.store.lockout(request.user_id))

    def ResetLockout(self, request, context):
        return _state(self.store.reset(_user(request)))
