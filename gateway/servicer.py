"""The public Gateway servicer: protobuf in, the login flow (gateway.flow), protobuf out."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from gateway import validation
from gateway.auth import ApiKeys
from gateway.budget import Budget
from gateway.flow import LoginFlow, Proof, Sample
from hwotp.client import METADATA_KEY
from hwotp.errors import InvalidInput, PermissionDenied
from hwotp.outcomes import Reason
from hwotp.v1 import gateway_pb2, gateway_pb2_grpc

_REASONS = {reason: gateway_pb2.Reason.Value(reason.name) for reason in Reason}
# what a challenge asks for: the signature none, "with" the digits, or "only"
_FACTORS = {gateway_pb2.FACTOR_UNSPECIFIED: "none", gateway_pb2.FACTOR_DIGITS: "none",
            gateway_pb2.FACTOR_SIGNATURE: "only", gateway_pb2.FACTOR_DIGITS_AND_SIGNATURE: "with"}


def _proof(message) -> Proof:
    token = validation.owner_token(message.owner_token) if message.owner_token else ""
    return Proof(token, message.admin_override)


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, flow: LoginFlow, keys: ApiKeys | None, budget_ms: int):
        self.flow, self.keys, self.budget_s = flow, keys, budget_ms / 1000.0

    def _caller(self, context) -> str:
        """The relying party calling (the auth interceptor already refused unknown keys)."""
        if self.keys is None:
            return "anonymous"
        caller = self.keys.caller(dict(context.invocation_metadata()).get(METADATA_KEY))
        if caller is None:  # the interceptor refuses these; never scope a user by nobody
            raise PermissionDenied("no registered caller")
        return caller

    def _budget(self, context) -> Budget:
        return Budget(self.budget_s, context.time_remaining())

    def Enroll(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        boxes, digits = validation.enrolment_samples(request.samples, self.flow.settings)
        samples = [Sample(digit, box, box.trajectory) for digit, box in zip(digits, boxes)]
        enrolled = self.flow.enrol(caller, user, samples, validation.display_samples(request), _proof(request.proof),
                                   budget)
        return gateway_pb2.EnrollResponse(user_id=user, samples_enrolled=enrolled.samples,
                                          model_version=enrolled.model_version)

    def DeleteEnrollment(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        return gateway_pb2.DeleteEnrollmentResponse(deleted=self.flow.delete(caller, user, _proof(request.proof), budget))

    def BeginChallenge(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        if request.length and not 4 <= request.length <= 10:
            raise InvalidInput(f"length {request.length} is outside 4-10")
        if request.factor not in _FACTORS:
            raise InvalidInput(f"factor {request.factor} is not one of {sorted(_FACTORS)}")
        began = self.flow.begin(caller, user, request.length, request.as_image, budget, _FACTORS[request.factor])
        expires_at = Timestamp()
        expires_at.FromMilliseconds(began.expires_at_ms)
        return gateway_pb2.BeginChallengeResponse(
            challenge_id=began.challenge_id, digits=began.digits, expires_at=expires_at,
            time_limit_s=began.time_limit_s, digits_image=began.digits_image,
            display_templates=began.display_templates, stepped_up=began.stepped_up, signature=began.signature)

    def SubmitChallenge(self, request, context):
        arrived_ms = int(time.time() * 1000)
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        challenge_id = validation.challenge_id(request.challenge_id)
        decision = self.flow.submit(caller, user, challenge_id, validation.submission_boxes(request.boxes),
                                    arrived_ms, budget)
        return gateway_pb2.SubmitChallengeResponse(
            decision=gateway_pb2.ACCEPT if decision.accepted else gateway_pb2.REJECT,
            reason=_REASONS[decision.reason], owner_token=decision.owner_token)

    def SetRepositioning(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        if len(request.scheme) > 64:
            raise InvalidInput("repositioning scheme is too long")
        active = self.flow.set_repositioning(caller, user, request.scheme, _proof(request.proof), budget)
        return gateway_pb2.SetRepositioningResponse(active=active)

    def ResetLockout(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        state = self.flow.reset_lockout(caller, user, budget)
        return gateway_pb2.ResetLockoutResponse(failures_cleared=state.failures, was_disabled=state.disabled)

    def EnrollSignature(self, request, context):
        budget, caller, user = self._budget(context), self._caller(context), validation.user_id(request.user_id)
        enrolled = self.flow.enrol_signature(caller, user, validation.signatures(request.signatures),
                                             _proof(request.proof), budget)
        return gateway_pb2.EnrollSignatureResponse(signatures_enrolled=enrolled.samples,
                                                   model_version=enrolled.model_version)
