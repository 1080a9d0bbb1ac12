"""Challenge gRPC servicer: protobuf in, domain call, protobuf out."""

from __future__ import annotations

from hwotp.config import Settings
from hwotp.errors import InvalidInput
from hwotp.v1 import challenge_pb2, challenge_pb2_grpc
from services.challenge.store import ChallengeStore

_STATUS = {
    "claimed": challenge_pb2.CLAIM_STATUS_CLAIMED,
    "unknown": challenge_pb2.CLAIM_STATUS_UNKNOWN,
    "expired": challenge_pb2.CLAIM_STATUS_EXPIRED,
    "used": challenge_pb2.CLAIM_STATUS_ALREADY_USED,
}


class ChallengeServicer(challenge_pb2_grpc.ChallengeServicer):
    def __init__(self, store: ChallengeStore, settings: Settings):
        self.store, self.settings = store, settings

    def Create(self, request, context):
        if not request.user_id:
            raise InvalidInput("user_id is missing")
        length = request.length or self.settings.challenge_length
        if not 4 <= length <= 10:
            raise InvalidInput(f"challenge length {length} is outside 4-10")
        issued = self.store.create(request.user_id, length, self.settings.challenge_time_limit_s)
        return challenge_pb2.CreateChallengeResponse(
            challenge_id=issued.challenge_id, digits=issued.digits,
            expires_at_ms=issued.expires_at_ms, time_limit_s=issued.time_limit_s)

    def Claim(self, request, context):
        if not request.challenge_id or not request.user_id:
            raise InvalidInput("challenge_id and user_id are required")
        claim = self.store.claim(request.challenge_id, request.user_id)
        return challenge_pb2.ClaimChallengeResponse(
            status=_STATUS[claim.status], digits=claim.digits, expires_at_ms=claim.expires_at_ms)
