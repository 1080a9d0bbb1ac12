"""Challenge gRPC servicer: protobuf in, domain call, protobuf out."""

from __future__ import annotations

import math

from hwotp.config import ChallengeSettings
from hwotp.errors import FailedPrecondition, InvalidInput, ResourceExhausted
from hwotp.internal.v1 import challenge_pb2, challenge_pb2_grpc
from hwotp.outcomes import ClaimStatus, Lockout
from services.challenge.store import ChallengeStore, Refused

_STATUS = {status: challenge_pb2.ClaimStatus.Value(f"CLAIM_STATUS_{status.name}") for status in ClaimStatus}


def _subject(request) -> str:
    if not request.subject:
        raise InvalidInput("subject is missing")
    return request.subject


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


class ChallengeServicer(challenge_pb2_grpc.ChallengeServiceServicer):
    def __init__(self, store: ChallengeStore, settings: ChallengeSettings):
        self.store, self.settings = store, settings

    def Create(self, request, context):
        length = request.length or self.settings.challenge_length
        if not 4 <= length <= 10 or request.fixed_length and not 4 <= request.fixed_length <= 10:
            raise InvalidInput(f"challenge length {request.fixed_length or length} is outside 4-10")
        if request.with_signature and request.signature_only:
            raise InvalidInput("a challenge is the signature with the digits, or the signature only")
        signature = "only" if request.signature_only else "with" if request.with_signature else "none"
        issued = self.store.create(_subject(request), length, self.settings.challenge_time_limit_s, request.caller,
                                   request.fixed_length, signature, request.signature_enrolled)
        if isinstance(issued, Refused):
            raise refusal(issued)
        return challenge_pb2.CreateResponse(
            challenge_id=issued.challenge_id, digits=issued.digits,
            expires_at_ms=issued.expires_at_ms, time_limit_s=issued.time_limit_s, stepped_up=issued.stepped_up,
            signature=issued.signature)

    def Claim(self, request, context):
        if not request.challenge_id:
            raise InvalidInput("challenge_id is missing")
        claim = self.store.claim(request.challenge_id, _subject(request), request.boxes,
                                 request.last_box_fits_signature)
        return challenge_pb2.ClaimResponse(
            status=_STATUS[claim.status], digits=claim.digits, expires_at_ms=claim.expires_at_ms,
            consecutive_failures=claim.failures, throttling=claim.throttling, disabled=claim.disabled,
            stepped_up=claim.stepped_up,
            retry_after_ms=claim.retry_after_ms, length=claim.length, signature=claim.signature)

    def RecordSuccess(self, request, context):
        token = self.store.succeed(_subject(request), request.stepped_up)
        return challenge_pb2.RecordSuccessResponse(owner_token=token)

    def Forgive(self, request, context):
        return challenge_pb2.ForgiveResponse(state=_state(self.store.forgive(_subject(request))))

    def StepUp(self, request, context):
        subject = _subject(request)
        self.store.step_up(subject)
        return challenge_pb2.StepUpResponse(state=_state(self.store.lockout(subject)))

    def ResetLockout(self, request, context):
        return challenge_pb2.ResetLockoutResponse(state=_state(self.store.reset(_subject(request))))

    def RedeemOwnerToken(self, request, context):
        return challenge_pb2.RedeemOwnerTokenResponse(valid=self.store.redeem(_subject(request), request.owner_token))

    def Forget(self, request, context):
        return challenge_pb2.ForgetResponse(keys_deleted=self.store.forget(_subject(request)))
