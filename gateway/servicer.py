"""The public Gateway servicer: validates, orchestrates the internal services, decides, fails closed.

Every user is scoped by the calling relying party: below the gateway a user is
only a subject (hwotp.subjects), so no caller can reach another's users.
"""

from __future__ import annotations

import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gateway import validation
from gateway.admission import Admission
from gateway.alerts import WebhookNotifier
from gateway.auth import METADATA_KEY, ApiKeys
from gateway.decision import Outcome, Reason, decide
from gateway.downstream import Budget, Downstream, translate
from gateway.render import render_digits
from hwotp import boxes, logs
from hwotp.config import Settings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, HwotpError, InvalidInput, NotFound,
                          PermissionDenied, ResourceExhausted, Unavailable)
from hwotp.metrics import Metrics
from hwotp.server import status_of
from hwotp.subjects import Subjects
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
# Errors after a claim that an attacker could cause (load, timeouts) still count
# as the failure the claim counted; the others are the system's own (a scheme
# that no longer fits, templates of an old model) and are taken back.
_COUNTED_ERRORS = (Unavailable, DeadlineExceeded, ResourceExhausted)


def _now_ms() -> int:
    return int(time.time() * 1000)


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, settings: Settings, downstream: Downstream, metrics: Metrics, keys: ApiKeys | None,
                 subjects: Subjects, admission: Admission, alerts: WebhookNotifier | None = None):
        self.settings, self.down, self.metrics, self.keys, self.alerts = settings, downstream, metrics, keys, alerts
        self.subjects, self.admission = subjects, admission
        self.admins = {name.strip() for name in settings.admin_callers.split(",") if name.strip()}

    def _caller(self, context) -> str:
        """The relying party calling (the auth interceptor already refused unknown keys)."""
        if self.keys is None:
            return "anonymous"
        caller = self.keys.caller(dict(context.invocation_metadata()).get(METADATA_KEY))
        if caller is None:  # the interceptor refuses these; never scope a user by nobody
            raise PermissionDenied("no registered caller")
        return caller

    def _who(self, request, context) -> tuple[str, str, str]:
        """(caller, user id, subject) of a request naming a user."""
        caller, user = self._caller(context), validation.user_id(request.user_id)
        return caller, user, self.subjects.of(caller, user)

    def _budget(self, context) -> Budget:
        return Budget(self.settings.gateway_budget_ms / 1000.0, context)

    def _call(self, method, request, budget: Budget, service: str):
        try:
            return method(request, timeout=budget.remaining())
        except grpc.RpcError as error:
            raise translate(error, service) from None

    def _owner_proof(self, caller: str, user: str, subject: str, proof, action: str, budget: Budget) -> bool:
        """True when the request proves the owner's consent (a valid owner token) or an
        administrator overrides (audited); False when it brings no proof."""
        if proof.admin_override:
            if caller not in self.admins:
                raise PermissionDenied(f"caller {caller!r} may not override (HWOTP_ADMIN_CALLERS)")
            logs.audit("admin_override", caller=caller, user=user, action=action)
            return True
        if not proof.owner_token:
            return False
        redeemed = self._call(self.down.challenge.RedeemOwnerToken, challenge_pb2.RedeemOwnerTokenRequest(
            subject=subject, owner_token=validation.owner_token(proof.owner_token)), budget, "challenge")
        if not redeemed.valid:
            logs.audit("owner_token_refused", caller=caller, user=user, action=action)
            raise PermissionDenied("owner_token is unknown, expired, already used or another user's")
        return True

    def _require_owner_proof(self, caller: str, user: str, subject: str, proof, action: str, budget: Budget) -> None:
        if not self._owner_proof(caller, user, subject, proof, action, budget):
            raise PermissionDenied(f"{action} needs an owner_token from an accepted login, "
                                   "or an administrator's override")

    def Enroll(self, request, context):
        budget = self._budget(context)
        caller, user, subject = self._who(request, context)
        images, digits = validation.enrolment_samples(request.samples, self.settings)
        self.admission.enrols.admit(caller, "enrolment")
        normalized = boxes.from_batch(*self.admission.decode(images, budget))
        read = self._call(self.down.recognizer.Recognize, recognizer_pb2.RecognizeRequest(boxes=normalized),
                          budget, "recognizer")
        # no confidences in the message: they would tell a caller how the recognizer sees a sample
        refused = [f"sample {i} (labelled {d}) reads as {r.digit}" for i, (d, r) in enumerate(zip(digits, read.results))
                   if r.digit != d and r.confidence >= self.settings.enrol_refuse_confidence]
        if refused:
            raise InvalidInput("enrolment refused, nothing stored: " + "; ".join(refused))
        replace = self._owner_proof(caller, user, subject, request.proof, "re-enrolment", budget)
        keep_originals = self.settings.store_enrolment_images or self.settings.display_templates
        originals = images if keep_originals else []
        designated = validation.display_samples(request)
        trajectories = [handwriting_pb2.Handwriting(strokes=sample.handwriting.strokes).SerializeToString()
                        if sample.handwriting.strokes else b"" for sample in request.samples]
        enrolled = self._call(self.down.verifier.Enroll,
                              verifier_pb2.VerifierEnrollRequest(subject=subject, boxes=normalized, digits=digits,
                                                                 originals=originals, trajectories=trajectories,
                                                                 display_samples=designated, replace=replace),
                              budget, "verifier")
        logs.audit("enrolment", caller=caller, user=user, samples=len(digits), model_version=enrolled.model_version,
                   replaced=replace)
        return gateway_pb2.EnrollResponse(user_id=user, samples_enrolled=enrolled.samples,
                                          model_version=enrolled.model_version)

    def DeleteEnrollment(self, request, context):
        budget = self._budget(context)
        caller, user, subject = self._who(request, context)
        self._require_owner_proof(caller, user, subject, request.proof, "deletion", budget)
        deleted = self._call(self.down.verifier.DeleteEnrollment, verifier_pb2.VerifierSubject(subject=subject),
                             budget, "verifier").deleted
        self._call(self.down.challenge.Forget, challenge_pb2.SubjectRequest(subject=subject), budget, "challenge")
        logs.audit("enrolment_deleted", caller=caller, user=user, deleted=deleted)
        return gateway_pb2.DeleteEnrollmentResponse(deleted=deleted)

    def BeginChallenge(self, request, context):
        budget = self._budget(context)
        caller, user, subject = self._who(request, context)
        if request.length and not 4 <= request.length <= 10:
            raise InvalidInput(f"length {request.length} is outside 4-10")
        status = self._call(self.down.verifier.GetEnrollment, verifier_pb2.VerifierSubject(subject=subject),
                            budget, "verifier")
        if not status.enrolled:
            raise FailedPrecondition("user is not enrolled")
        if not status.current:
            raise FailedPrecondition("re-enrolment required: the user's templates belong to an older verifier model")
        try:
            issued = self._call(self.down.challenge.Create, challenge_pb2.CreateChallengeRequest(
                subject=subject, length=request.length, caller=caller, fixed_length=status.fixed_length),
                budget, "challenge")
        except (ResourceExhausted, FailedPrecondition) as refused:
            logs.audit("challenge_refused", caller=caller, user=user, reason=str(refused))
            raise
        expires_at = Timestamp()
        expires_at.FromMilliseconds(issued.expires_at_ms)
        logs.audit("challenge", caller=caller, user=user, length=len(issued.digits),
                   time_limit_s=issued.time_limit_s, as_image=request.as_image)
        response = gateway_pb2.BeginChallengeResponse(challenge_id=issued.challenge_id, expires_at=expires_at,
                                                      time_limit_s=issued.time_limit_s, stepped_up=issued.stepped_up)
        if request.as_image:
            response.digits_image = render_digits(issued.digits)
        else:
            response.digits = issued.digits
        if self.settings.display_templates:
            response.display_templates.extend(self._display_templates(subject, issued.digits, budget))
        return response

    def _display_templates(self, subject: str, digits: str, budget: Budget) -> list[bytes]:
        request = verifier_pb2.DisplayTemplatesRequest(subject=subject, digits=[int(c) for c in digits])
        try:
            return list(self._call(self.down.verifier.GetDisplayTemplates, request, budget, "verifier").images)
        except NotFound:
            return []  # enrolled before display templates were switched on

    def SubmitChallenge(self, request, context):
        arrived_ms = _now_ms()
        budget = self._budget(context)
        caller, user, subject = self._who(request, context)
        challenge_id = validation.challenge_id(request.challenge_id)
        images = validation.submission_boxes(request.boxes)
        self.admission.submits.admit(caller, "submission")
        fields, fingerprints = self.admission.decode(images, budget)
        claim = self._call(self.down.challenge.Claim, challenge_pb2.ClaimChallengeRequest(
            challenge_id=challenge_id, subject=subject, boxes=len(fields)), budget, "challenge")
        if claim.status == challenge_pb2.CLAIM_STATUS_WRONG_LENGTH:
            raise InvalidInput(f"{len(fields)} boxes for a {claim.length}-digit challenge; "
                               "nothing was used up or counted")
        if claim.status == challenge_pb2.CLAIM_STATUS_THROTTLED:
            seconds = max(1, -(-claim.retry_after_ms // 1000))
            logs.audit("submission_refused", caller=caller, user=user, reason="throttled")
            raise ResourceExhausted(f"too many failed attempts; retry in {seconds} s "
                                    "(the challenge stays valid until it expires)", seconds)
        if claim.status != challenge_pb2.CLAIM_STATUS_CLAIMED:
            return self._respond(caller, user, False, _CLAIM_REJECTIONS.get(claim.status, gateway_pb2.UNKNOWN_CHALLENGE))
        try:
            return self._decide(caller, user, subject, claim, fields, fingerprints, arrived_ms, budget)
        except HwotpError as error:
            self._claimed_but_undecided(caller, user, subject, claim, error)
            raise

    def _decide(self, caller: str, user: str, subject: str, claim, fields, fingerprints, arrived_ms: int,
                budget: Budget):
        displayed = [int(c) for c in claim.digits]
        normalized = boxes.from_batch(fields, fingerprints)
        # Both models at once, each with what is left of the budget.
        verifying = self.down.beside.submit(
            self.down.verifier.Verify, verifier_pb2.VerifyRequest(subject=subject, boxes=normalized, digits=displayed),
            timeout=budget.remaining())
        recognised = self._call(self.down.recognizer.Recognize, recognizer_pb2.RecognizeRequest(boxes=normalized),
                                budget, "recognizer")
        try:
            verdict = verifying.result()
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                self._note_failure(caller, user, claim)
                return self._respond(caller, user, False, gateway_pb2.NOT_ENROLLED)
            raise translate(error, "verifier") from None
        # the digits the boxes must hold: the challenge after the user's secret repositioning
        written = "".join(str(d) for d in verdict.expected_digits) or claim.digits
        outcome: Outcome = decide(written, [r.digit for r in recognised.results], verdict.writer_ok,
                                  arrived_ms, claim.expires_at_ms, replayed=any(verdict.replayed))
        details = {
            "digit_correct": [r.digit == int(d) for r, d in zip(recognised.results, written)],
            "recognition_confidence": [round(r.confidence, 4) for r in recognised.results],
            "writer_scores": [round(s, 4) for s in verdict.scores],
            "writer_passed": list(verdict.passed), "policy": verdict.policy, "replayed": list(verdict.replayed),
        }
        if not outcome.accepted:
            self._note_failure(caller, user, claim)
            if outcome.reason is Reason.WRITER_MISMATCH and verdict.near_miss:
                self._active_defence(caller, user, subject, len(written), budget)
            return self._respond(caller, user, False, _REASONS[outcome.reason], details=details)
        token = self._accepted(caller, user, subject, claim.stepped_up, normalized, budget)
        return self._respond(caller, user, True, gateway_pb2.ACCEPTED, details=details, owner_token=token)

    def _accepted(self, caller: str, user: str, subject: str, stepped_up: bool, normalized, budget: Budget) -> str:
        """The accepted boxes join the replay history (without that the answer is not
        accepted: fail closed), and the failure count is cleared, which also issues the
        owner token. Both at once."""
        remembering = self.down.beside.submit(self.down.verifier.RememberAccepted, verifier_pb2.RememberRequest(
            subject=subject, fingerprints=[box.fingerprint for box in normalized]), timeout=budget.remaining())
        token = ""
        try:
            token = self.down.challenge.RecordSuccess(challenge_pb2.RecordSuccessRequest(
                subject=subject, stepped_up=stepped_up), timeout=budget.remaining()).owner_token
        except (grpc.RpcError, DeadlineExceeded):
            # the user stays accepted, with one failure too many counted and no owner token
            logs.audit("success_not_recorded", caller=caller, user=user)
        try:
            remembering.result()
        except grpc.RpcError as error:
            raise translate(error, "verifier") from None
        return token

    def _claimed_but_undecided(self, caller: str, user: str, subject: str, claim, error: HwotpError) -> None:
        """An error after the claim: a decision event and a metric all the same; the failure
        the claim counted stands when an attacker could have caused the error, else it is
        taken back."""
        counted = isinstance(error, _COUNTED_ERRORS)
        if counted:
            self._note_failure(caller, user, claim)
        else:
            try:
                self.down.challenge.Forgive(challenge_pb2.SubjectRequest(subject=subject), timeout=1.0)
            except grpc.RpcError:
                counted = True
        code = status_of(error).name
        self.metrics.decisions.labels("ERROR", code).inc()
        logs.audit("decision", caller=caller, user=user, decision="ERROR", reason=code, counted=counted,
                   message=str(error))

    def _note_failure(self, caller: str, user: str, claim) -> None:
        """The claim counted this failure; past the threshold it is a lockout event."""
        if claim.consecutive_failures >= self.settings.lockout_throttle_after:
            state = "disabled" if claim.disabled else "throttled"
            self.metrics.lockouts.labels(state).inc()
            logs.audit("lockout", caller=caller, user=user, state=state,
                       consecutive_failures=claim.consecutive_failures)

    def _active_defence(self, caller: str, user: str, subject: str, length: int, budget: Budget) -> None:
        """A near miss: longer challenges from now on, and the real user is alerted."""
        try:
            self.down.challenge.StepUp(challenge_pb2.SubjectRequest(subject=subject), timeout=budget.remaining())
        except (grpc.RpcError, DeadlineExceeded):
            logs.audit("step_up_not_recorded", caller=caller, user=user)
        logs.audit("near_miss", caller=caller, user=user, challenge_length=length)
        self.metrics.near_misses.inc()
        if self.alerts:
            self.alerts.notify({"event": "near_miss", "user_id": user, "at": int(time.time()),
                                "challenge_length": length})

    def SetRepositioning(self, request, context):
        budget = self._budget(context)
        caller, user, subject = self._who(request, context)
        if len(request.scheme) > 64:
            raise InvalidInput("repositioning scheme is too long")
        self._require_owner_proof(caller, user, subject, request.proof, "changing the repositioning", budget)
        answer = self._call(self.down.verifier.SetRepositioning,
                            verifier_pb2.VerifierRepositioningRequest(subject=subject, scheme=request.scheme),
                            budget, "verifier")
        logs.audit("repositioning_set", caller=caller, user=user, active=answer.active)  # never the scheme itself
        return gateway_pb2.SetRepositioningResponse(active=answer.active)

    def ResetLockout(self, request, context):
        budget = self._budget(context)
        caller = self._caller(context)
        if caller not in self.admins:
            raise PermissionDenied(f"caller {caller!r} may not reset lockouts (HWOTP_ADMIN_CALLERS)")
        caller, user, subject = self._who(request, context)  # an administrator's own users only
        state = self._call(self.down.challenge.ResetLockout, challenge_pb2.SubjectRequest(subject=subject),
                           budget, "challenge")
        logs.audit("lockout_reset", caller=caller, user=user, failures_cleared=state.consecutive_failures,
                   was_disabled=state.disabled)
        return gateway_pb2.ResetLockoutResponse(failures_cleared=state.consecutive_failures,
                                                was_disabled=state.disabled)

    def _respond(self, caller: str, user: str, accepted: bool, reason: int, details: dict | None = None,
                 owner_token: str = ""):
        decision = gateway_pb2.ACCEPT if accepted else gateway_pb2.REJECT
        reason_name = gateway_pb2.Reason.Name(reason)
        self.metrics.decisions.labels(gateway_pb2.Decision.Name(decision), reason_name).inc()
        logs.audit("decision", caller=caller, user=user, decision=gateway_pb2.Decision.Name(decision),
                   reason=reason_name, **(details or {}))
        return gateway_pb2.SubmitChallengeResponse(decision=decision, reason=reason, owner_token=owner_token)
