"""The public Gateway servicer: validates, orchestrates the internal services, decides, fails closed."""

from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import validation
from gateway.alerts import WebhookNotifier
from gateway.auth import METADATA_KEY, ApiKeys
from gateway.decision import Outcome, Reason, decide
from gateway.downstream import Budget, Downstream, translate
from gateway.render import render_digits
from hwotp import boxes, logs
from hwotp.config import Settings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, InvalidInput, NotFound, PermissionDenied,
                          ResourceExhausted)
from hwotp.metrics import Metrics
from hwotp.preprocess import prepare_boxes
from hwotp.v1 import challenge_pb2, gateway_pb2, gateway_pb2_grpc, handwriting_pb2, recognizer_pb2, verifier_pb2

_CLAIM_REJECTIONS = {
    challenge_pb2.CLAIM_STATUS_UNKNOWN: gateway_pb2.UNKNOWN_CHALLENGE,
    challenge_pb2.CLAIM_STATUS_EXPIRED: gateway_pb2.EXPIRED,
    challenge_pb2.CLAIM_STATUS_ALREADY_USED: gateway_pb2.ALREADY_USED,
    challenge_pb2.CLAIM_STATUS_LOCKED: gateway_pb2.LOCKED,
}
_REASONS = {
    Reason.ACCEPTED: gateway_pb2.ACCEPTED,
    Reason.WRONG_DIGITS: gateway_pb2.WRONG_DIGITS,
    Reason.WRITER_MISMATCH: gateway_pb2.WRITER_MISMATCH,
    Reason.EXPIRED: gateway_pb2.EXPIRED,
    Reason.REPLAY: gateway_pb2.REPLAY,
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, settings: Settings, downstream: Downstream, metrics: Metrics, keys: ApiKeys | None,
                 alerts: WebhookNotifier | None = None):
        self.settings, self.down, self.metrics, self.keys, self.alerts = settings, downstream, metrics, keys, alerts
        self.admins = {name.strip() for name in settings.admin_callers.split(",") if name.strip()}

    def _caller(self, context) -> str:
        """The relying party calling (the auth interceptor already refused unknown keys)."""
        if self.keys is None:
            return "anonymous"
        return self.keys.caller(dict(context.invocation_metadata()).get(METADATA_KEY)) or "unknown"

    def _budget(self, context) -> Budget:
        return Budget(self.settings.gateway_budget_ms / 1000.0, context)

    def _call(self, method, request, budget: Budget, service: str):
        try:
            return method(request, timeout=budget.remaining())
        except grpc.RpcError as error:
            raise translate(error, service) from None

    def Enroll(self, request, context):
        budget = self._budget(context)
        user = validation.user_id(request.user_id)
        images, digits = validation.enrolment_samples(request.samples, self.settings)
        normalized = boxes.from_batch(*prepare_boxes(images))
        read = self._call(self.down.recognizer.Recognize, recognizer_pb2.RecognizeRequest(boxes=normalized),
                          budget, "recognizer")
        refused = [f"sample {i} (labelled {d}) reads as {r.digit} with confidence {r.confidence:.2f}"
                   for i, (d, r) in enumerate(zip(digits, read.results))
                   if r.digit != d and r.confidence >= self.settings.enrol_refuse_confidence]
        if refused:
            raise InvalidInput("enrolment refused, nothing stored: " + "; ".join(refused))
        keep_originals = self.settings.store_enrolment_images or self.settings.display_templates
        originals = images if keep_originals else []
        designated = validation.display_samples(request)
        trajectories = [handwriting_pb2.Handwriting(strokes=sample.handwriting.strokes).SerializeToString()
                        if sample.handwriting.strokes else b"" for sample in request.samples]
        enrolled = self._call(self.down.verifier.Enroll,
                              verifier_pb2.VerifierEnrollRequest(user_id=user, boxes=normalized, digits=digits,
                                                                 originals=originals, trajectories=trajectories,
                                                                 display_samples=designated),
                              budget, "verifier")
        logs.audit("enrolment", user=user, samples=len(digits), model_version=enrolled.model_version)
        return gateway_pb2.EnrollResponse(user_id=user, samples_enrolled=enrolled.samples,
                                          model_version=enrolled.model_version)

    def DeleteEnrollment(self, request, context):
        budget = self._budget(context)
        user = validation.user_id(request.user_id)
        deleted = self._call(self.down.verifier.DeleteEnrollment, verifier_pb2.GetEnrollmentRequest(user_id=user),
                             budget, "verifier").deleted
        logs.audit("enrolment_deleted", user=user, deleted=deleted)
        return gateway_pb2.DeleteEnrollmentResponse(deleted=deleted)

    def BeginChallenge(self, request, context):
        budget = self._budget(context)
        user = validation.user_id(request.user_id)
        if request.length and not 4 <= request.length <= 10:
            raise InvalidInput(f"length {request.length} is outside 4-10")
        status = self._call(self.down.verifier.GetEnrollment, verifier_pb2.GetEnrollmentRequest(user_id=user),
                            budget, "verifier")
        if not status.enrolled:
            raise FailedPrecondition("user is not enrolled")
        if not status.current:
            raise FailedPrecondition("re-enrolment required: the user's templates belong to an older verifier model")
        caller = self._caller(context)
        try:
            issued = self._call(self.down.challenge.Create,
                                challenge_pb2.CreateChallengeRequest(user_id=user, length=request.length, caller=caller),
                                budget, "challenge")
        except (ResourceExhausted, FailedPrecondition) as refused:
            logs.audit("challenge_refused", user=user, caller=caller, reason=str(refused))
            raise
        expires_at = Timestamp()
        expires_at.FromMilliseconds(issued.expires_at_ms)
        logs.audit("challenge", user=user, caller=caller, length=len(issued.digits), time_limit_s=issued.time_limit_s,
                   as_image=request.as_image)
        response = gateway_pb2.BeginChallengeResponse(challenge_id=issued.challenge_id, expires_at=expires_at,
                                                      time_limit_s=issued.time_limit_s, stepped_up=issued.stepped_up)
        if request.as_image:
            response.digits_image = render_digits(issued.digits)
        else:
            response.digits = issued.digits
        if self.settings.display_templates:
            response.display_templates.extend(self._display_templates(user, issued.digits, budget))
        return response

    def _display_templates(self, user: str, digits: str, budget: Budget) -> list[bytes]:
        request = verifier_pb2.DisplayTemplatesRequest(user_id=user, digits=[int(c) for c in digits])
        try:
            return list(self._call(self.down.verifier.GetDisplayTemplates, request, budget, "verifier").images)
        except NotFound:
            return []  # enrolled before display templates were switched on

    def SubmitChallenge(self, request, context):
        arrived_ms = _now_ms()
        budget = self._budget(context)
        user = validation.user_id(request.user_id)
        challenge_id = validation.challenge_id(request.challenge_id)
        fields, fingerprints = prepare_boxes(validation.submission_boxes(request.boxes))
        claim = self._call(self.down.challenge.Claim,
                           challenge_pb2.ClaimChallengeRequest(challenge_id=challenge_id, user_id=user),
                           budget, "challenge")
        if claim.status != challenge_pb2.CLAIM_STATUS_CLAIMED:
            return self._respond(user, False, _CLAIM_REJECTIONS.get(claim.status, gateway_pb2.UNKNOWN_CHALLENGE))
        if len(fields) != len(claim.digits):
            raise InvalidInput(f"{len(fields)} boxes for a {len(claim.digits)}-digit challenge; the challenge is used up")
        displayed = [int(c) for c in claim.digits]
        normalized = boxes.from_batch(fields, fingerprints)
        # Both models at once, each with what is left of the budget.
        verifying = self.down.beside.submit(
            self.down.verifier.Verify, verifier_pb2.VerifyRequest(user_id=user, boxes=normalized, digits=displayed),
            timeout=budget.remaining())
        recognised = self._call(self.down.recognizer.Recognize, recognizer_pb2.RecognizeRequest(boxes=normalized),
                                budget, "recognizer")
        try:
            verdict = verifying.result()
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                self._note_failure(user, claim)
                return self._respond(user, False, gateway_pb2.NOT_ENROLLED)
            raise translate(error, "verifier") from None
        # the digits the boxes must hold: the challenge after the user's secret repositioning
        written = "".join(str(d) for d in verdict.expected_digits) or claim.digits
        outcome: Outcome = decide(written, [r.digit for r in recognised.results], verdict.writer_ok,
                                  arrived_ms, claim.expires_at_ms, replayed=any(verdict.replayed))
        if outcome.accepted:
            self._record_success(user, claim.stepped_up, budget)
        else:
            self._note_failure(user, claim)
            if outcome.reason is Reason.WRITER_MISMATCH and verdict.near_miss:
                self._active_defence(user, len(written), budget)
        return self._respond(user, outcome.accepted, _REASONS[outcome.reason], details={
            "digit_correct": [r.digit == int(d) for r, d in zip(recognised.results, written)],
            "recognition_confidence": [round(r.confidence, 4) for r in recognised.results],
            "writer_scores": [round(s, 4) for s in verdict.scores],
            "writer_passed": list(verdict.passed), "policy": verdict.policy, "replayed": list(verdict.replayed),
        })

    def _note_failure(self, user: str, claim) -> None:
        """The claim counted this failure; past the threshold it is a lockout event."""
        if claim.consecutive_failures >= self.settings.lockout_throttle_after:
            state = "disabled" if claim.disabled else "throttled"
            self.metrics.lockouts.labels(state).inc()
            logs.audit("lockout", user=user, state=state, consecutive_failures=claim.consecutive_failures)

    def _record_success(self, user: str, stepped_up: bool, budget: Budget) -> None:
        # The claim counted a failure; an accepted answer clears the count (and
        # step-up, if this was a stepped-up challenge). If that fails the user
        # stays accepted and one failure too many is counted.
        try:
            self.down.challenge.RecordSuccess(challenge_pb2.SuccessRequest(user_id=user, stepped_up=stepped_up),
                                              timeout=budget.remaining())
        except (grpc.RpcError, DeadlineExceeded):
            logs.audit("success_not_recorded", user=user)

    def _active_defence(self, user: str, length: int, budget: Budget) -> None:
        """A near miss: longer challenges from now on, and the real user is alerted."""
        try:
            self.down.challenge.StepUp(challenge_pb2.UserRequest(user_id=user), timeout=budget.remaining())
        except (grpc.RpcError, DeadlineExceeded):
            logs.audit("step_up_not_recorded", user=user)
        logs.audit("near_miss", user=user, challenge_length=length)
        self.metrics.near_misses.inc()
        if self.alerts:
            self.alerts.notify({"event": "near_miss", "user_id": user, "at": int(time.time()),
                                "challenge_length": length})

    def SetRepositioning(self, request, context):
        budget = self._budget(context)
        user = validation.user_id(request.user_id)
        if len(request.scheme) > 64:
            raise InvalidInput("repositioning scheme is too long")
        answer = self._call(self.down.verifier.SetRepositioning,
                            verifier_pb2.VerifierRepositioningRequest(user_id=user, scheme=request.scheme),
                            budget, "verifier")
        logs.audit("repositioning_set", user=user, active=answer.active)  # never the scheme itself
        return gateway_pb2.SetRepositioningResponse(active=answer.active)

    def ResetLockout(self, request, context):
        budget = self._budget(context)
        caller = self._caller(context)
        if caller not in self.admins:
            raise PermissionDenied(f"caller {caller!r} may not reset lockouts (HWOTP_ADMIN_CALLERS)")
        user = validation.user_id(request.user_id)
        state = self._call(self.down.challenge.ResetLockout, challenge_pb2.UserRequest(user_id=user),
                           budget, "challenge")
        logs.audit("lockout_reset", user=user, caller=caller, failures_cleared=state.consecutive_failures,
                   was_disabled=state.disabled)
        return gateway_pb2.ResetLockoutResponse(failures_cleared=state.consecutive_failures,
                                                was_disabled=state.disabled)

    def _respond(self, user: str, accepted: bool, reason: int, details: dict | None = None):
        decision = gateway_pb2.ACCEPT if accepted else gateway_pb2.REJECT
        reason_name = gateway_pb2.Reason.Name(reason)
        self.metrics.decisions.labels(gateway_pb2.Decision.Name(decision), reason_name).inc()
        logs.audit("decision", user=user, decision=gateway_pb2.Decision.Name(decision), reason=reason_name,
                   **(details or {}))
        return gateway_pb2.SubmitChallengeResponse(decision=decision, reason=reason)
