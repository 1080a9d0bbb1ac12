"""The login flow: enrol, begin, submit and the changes to an enrolled user, as domain code.

It knows no protobuf and no gRPC: it asks the internal services through
gateway.ports, decides (gateway.decision), counts, audits and alerts, and
fails closed. Every user is scoped by the calling relying party: below the
gateway a user is only a subject (hwotp.subjects).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.admission import Admission
from gateway.alerts import WebhookNotifier
from gateway.budget import Budget
from gateway.decision import decide
from gateway.ports import Challenges, Enrolled, Prepared, Recognizer, SignatureVerdict, Verdict, Verifier, Written
from gateway.render import render_digits
from hwotp import logs
from hwotp.config import GatewaySettings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, HwotpError, InvalidInput, NotFound, PermissionDenied,
                          ResourceExhausted, Unavailable)
from hwotp.ink import png_of_strokes
from hwotp.metrics import Metrics
from hwotp.outcomes import Claim, ClaimStatus, Lockout, Reason
from hwotp.signature import MIN_POINTS as SIGNATURE_MIN_POINTS
from hwotp.subjects import Subjects

_CLAIM_REJECTIONS = {
    ClaimStatus.UNKNOWN: Reason.UNKNOWN_CHALLENGE,
    ClaimStatus.EXPIRED: Reason.EXPIRED,
    ClaimStatus.ALREADY_USED: Reason.ALREADY_USED,
    ClaimStatus.LOCKED: Reason.LOCKED,
}
# Errors after a claim that an attacker could cause (load, timeouts) still count
# as the failure the claim counted; the others are the system's own (a scheme
# that no longer fits, templates of an old model) and are taken back.
_COUNTED_ERRORS = (Unavailable, DeadlineExceeded, ResourceExhausted)


@dataclass(frozen=True)
class Sample:
    """One enrolment sample: its digit, its box, its serialized strokes (b"" for none)."""

    digit: int
    box: Written
    trajectory: bytes = b""


@dataclass(frozen=True)
class Proof:
    """That a change to an enrolled user is the owner's doing, or an administrator's."""

    owner_token: str = ""
    admin_override: bool = False


@dataclass(frozen=True)
class Began:
    challenge_id: str
    digits: str  # "" when the digits come as an image only
    expires_at_ms: int
    time_limit_s: int
    stepped_up: bool
    digits_image: bytes = b""
    display_templates: list[bytes] = field(default_factory=list)
    signature: bool = False  # the answer ends with the user's signature


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: Reason
    owner_token: str = ""  # with an acceptance


class LoginFlow:
    def __init__(self, settings: GatewaySettings, challenges: Challenges, recognizer: Recognizer, verifier: Verifier,
                 subjects: Subjects, admission: Admission, metrics: Metrics, alerts: WebhookNotifier | None = None):
        self.settings, self.challenges, self.recognizer, self.verifier = settings, challenges, recognizer, verifier
        self.subjects, self.admission, self.metrics, self.alerts = subjects, admission, metrics, alerts
        self.admins = {name.strip() for name in settings.admin_callers.split(",") if name.strip()}

    # --- enrolment and changes to an enrolled user ------------------------------------------------

    def enrol(self, caller: str, user: str, samples: list[Sample], display_samples: list[int], proof: Proof,
              budget: Budget) -> Enrolled:
        subject = self.subjects.of(caller, user)
        self.admission.enrols.admit(caller, "enrolment")
        digits = [s.digit for s in samples]
        prepared = self.admission.decode([s.box for s in samples], budget)
        read = self.recognizer.recognize(prepared, budget)
        # no confidences in the message: they would tell a caller how the recognizer sees a sample
        refused = [f"sample {i} (labelled {d}) reads as {r.digit}" for i, (d, r) in enumerate(zip(digits, read))
                   if r.digit != d and r.confidence >= self.settings.enrol_refuse_confidence]
        if refused:
            raise InvalidInput("enrolment refused, nothing stored: " + "; ".join(refused))
        replace = self._owner_proof(caller, user, subject, proof, "re-enrolment", budget)
        # the verifier keeps of the originals what its settings ask for (re-enrolment, display
        # templates); a box written as strokes has the server's rendering of them as its picture
        originals = [png_of_strokes(s.box.strokes) if s.box.strokes else s.box.image for s in samples]
        enrolled = self.verifier.enrol(subject, prepared, digits, originals, [s.trajectory for s in samples],
                                       display_samples, replace, budget)
        logs.audit("enrolment", caller=caller, user=user, samples=len(digits), model_version=enrolled.model_version,
                   replaced=replace)
        return enrolled

    def enrol_signature(self, caller: str, user: str, signatures: list[bytes], proof: Proof,
                        budget: Budget) -> Enrolled:
        """signatures: serialized strokes, checked (gateway.validation.signatures). The user
        must be enrolled, and the change the owner's (as a re-enrolment)."""
        subject = self.subjects.of(caller, user)
        self.admission.enrols.admit(caller, "enrolment")
        enrolment = self.verifier.enrolment(subject, budget)
        if not enrolment.enrolled:
            raise FailedPrecondition("user is not enrolled: enrol the digits first")
        self._require_owner_proof(caller, user, subject, proof, "signature enrolment", budget)
        enrolled = self.verifier.enrol_signature(subject, signatures, budget)
        logs.audit("signature_enrolment", caller=caller, user=user, signatures=enrolled.samples,
                   model_version=enrolled.model_version, replaced=enrolment.signature)
        return enrolled

    def delete(self, caller: str, user: str, proof: Proof, budget: Budget) -> bool:
        subject = self.subjects.of(caller, user)
        self._require_owner_proof(caller, user, subject, proof, "deletion", budget)
        deleted = self.verifier.delete(subject, budget)
        self.challenges.forget(subject, budget)
        logs.audit("enrolment_deleted", caller=caller, user=user, deleted=deleted)
        return deleted

    def set_repositioning(self, caller: str, user: str, scheme: str, proof: Proof, budget: Budget) -> bool:
        subject = self.subjects.of(caller, user)
        self._require_owner_proof(caller, user, subject, proof, "changing the repositioning", budget)
        active = self.verifier.set_repositioning(subject, scheme, budget)
        logs.audit("repositioning_set", caller=caller, user=user, active=active)  # never the scheme itself
        return active

    def reset_lockout(self, caller: str, user: str, budget: Budget) -> Lockout:
        if caller not in self.admins:
            raise PermissionDenied(f"caller {caller!r} may not reset lockouts (HWOTP_ADMIN_CALLERS)")
        state = self.challenges.reset_lockout(self.subjects.of(caller, user), budget)  # its own users only
        logs.audit("lockout_reset", caller=caller, user=user, failures_cleared=state.failures,
                   was_disabled=state.disabled)
        return state

    def _owner_proof(self, caller: str, user: str, subject: str, proof: Proof, action: str, budget: Budget) -> bool:
        """True when the request proves the owner's consent (a valid owner token) or an
        administrator overrides (audited); False when it brings no proof."""
        if proof.admin_override:
            if caller not in self.admins:
                raise PermissionDenied(f"caller {caller!r} may not override (HWOTP_ADMIN_CALLERS)")
            logs.audit("admin_override", caller=caller, user=user, action=action)
            return True
        if not proof.owner_token:
            return False
        if not self.challenges.redeem_owner_token(subject, proof.owner_token, budget):
            logs.audit("owner_token_refused", caller=caller, user=user, action=action)
            raise PermissionDenied("owner_token is unknown, expired, already used or another user's")
        return True

    def _require_owner_proof(self, caller: str, user: str, subject: str, proof: Proof, action: str,
                             budget: Budget) -> None:
        if not self._owner_proof(caller, user, subject, proof, action, budget):
            raise PermissionDenied(f"{action} needs an owner_token from an accepted login, "
                                   "or an administrator's override")

    # --- a login ---------------------------------------------------------------------------------

    def begin(self, caller: str, user: str, length: int, as_image: bool, budget: Budget,
              signature: str = "none") -> Began:
        """signature: "none", "with" the digits or "only" (the user must have one enrolled); a
        step-up adds it to the digits of a user who has one."""
        subject = self.subjects.of(caller, user)
        enrolment = self.verifier.enrolment(subject, budget)
        if not enrolment.enrolled:
            raise FailedPrecondition("user is not enrolled")
        if not enrolment.current:
            raise FailedPrecondition("re-enrolment required: the user's templates belong to an older verifier model")
        if signature != "none" and not enrolment.signature:
            raise FailedPrecondition("user has no enrolled signature (EnrollSignature)")
        try:
            issued = self.challenges.create(subject, length, caller, enrolment.fixed_length, budget, signature,
                                            enrolment.signature)
        except (ResourceExhausted, FailedPrecondition) as refused:
            logs.audit("challenge_refused", caller=caller, user=user, reason=str(refused))
            raise
        logs.audit("challenge", caller=caller, user=user, length=len(issued.digits),
                   time_limit_s=issued.time_limit_s, as_image=as_image, signature=issued.signature)
        shown = self.verifier.display_templates(subject, [int(c) for c in issued.digits], budget) \
            if enrolment.display_templates and issued.digits else []
        image = render_digits(issued.digits) if as_image and issued.digits else b""
        return Began(issued.challenge_id, "" if as_image else issued.digits, issued.expires_at_ms,
                     issued.time_limit_s, issued.stepped_up, image, shown, issued.signature)

    def submit(self, caller: str, user: str, challenge_id: str, boxes: list[Written], arrived_ms: int,
               budget: Budget) -> Decision:
        subject = self.subjects.of(caller, user)
        self.admission.submits.admit(caller, "submission")
        prepared = self.admission.decode(boxes, budget, one_domain=True)
        claim = self.challenges.claim(subject, challenge_id, len(prepared), budget, boxes[-1].fits_signature)
        if claim.status is ClaimStatus.WRONG_LENGTH:
            raise InvalidInput(f"{len(prepared)} boxes for a challenge of {claim.length} boxes (one per digit, and one "
                               "for the signature when it asks for one); nothing was used up or counted")
        if claim.status is ClaimStatus.SIGNATURE_UNFIT:
            raise InvalidInput(f"the challenge ends with the user's signature: its box must come as strokes of at "
                               f"least {SIGNATURE_MIN_POINTS} points that hold ink; nothing was used up or counted")
        if claim.status is ClaimStatus.THROTTLED:
            seconds = max(1, -(-claim.retry_after_ms // 1000))
            logs.audit("submission_refused", caller=caller, user=user, reason="throttled")
            raise ResourceExhausted(f"too many failed attempts; retry in {seconds} s "
                                    "(the challenge stays valid until it expires)", seconds)
        if claim.status is not ClaimStatus.CLAIMED:
            return self._decided(caller, user, Decision(False, _CLAIM_REJECTIONS[claim.status]))
        signed = boxes[-1].trajectory if claim.signature else b""
        try:
            return self._decide(caller, user, subject, claim, prepared, signed, arrived_ms, budget)
        except HwotpError as error:
            self._claimed_but_undecided(caller, user, subject, claim, error)
            raise

    def _decide(self, caller: str, user: str, subject: str, claim: Claim, prepared: Prepared, signed: bytes,
                arrived_ms: int, budget: Budget) -> Decision:
        """signed: the signature's strokes (serialized) when the answer ends with one."""
        digits = prepared.first(len(claim.digits))
        # The models (and the signature check) at once, each with what is left of the budget.
        signing = self.verifier.verify_signature(subject, signed, budget) if signed else None
        # a user whose failures throttle them is judged at the strict target: brute force
        verifying = self.verifier.verify(subject, digits, [int(c) for c in claim.digits], budget,
                                         strict=claim.throttling) if len(digits) else lambda: Verdict(True, "", [])
        readings = self.recognizer.recognize(digits, budget) if len(digits) else []
        try:
            verdict: Verdict = verifying()
            signature_verdict: SignatureVerdict | None = signing() if signing else None
        except NotFound:  # deleted since the challenge was issued
            self._note_failure(caller, user, claim)
            return self._decided(caller, user, Decision(False, Reason.NOT_ENROLLED))
        signature_ok = signature_verdict is None or signature_verdict.passed
        written = verdict.expected or claim.digits
        reason = decide(written, [r.digit for r in readings], verdict.writer_ok and signature_ok, arrived_ms,
                        claim.expires_at_ms,
                        replayed=any(verdict.replayed) or bool(signature_verdict and signature_verdict.replayed))
        details = {
            "digit_correct": [r.digit == int(d) for r, d in zip(readings, written)],
            "recognition_confidence": [round(r.confidence, 4) for r in readings],
            "writer_scores": [round(s, 4) for s in verdict.scores],
            "writer_passed": verdict.passed, "policy": verdict.policy, "modalities": verdict.modalities,
            "strict": claim.throttling, "replayed": verdict.replayed,
        }
        if signature_verdict is not None:
            details.update(signature_score=round(signature_verdict.score, 4), signature_passed=signature_verdict.passed,
                           signature_replayed=signature_verdict.replayed)
        if reason is not Reason.ACCEPTED:
            self._note_failure(caller, user, claim)
            if reason is Reason.WRITER_MISMATCH and verdict.near_miss:
                self._active_defence(caller, user, subject, len(written), budget)
            return self._decided(caller, user, Decision(False, reason), details)
        token = self._accepted(caller, user, subject, claim.stepped_up, digits, signed, budget)
        return self._decided(caller, user, Decision(True, reason, token), details)

    def _accepted(self, caller: str, user: str, subject: str, stepped_up: bool, prepared: Prepared, signed: bytes,
                  budget: Budget) -> str:
        """The accepted boxes and signature join the replay history (without that the answer
        is not accepted: fail closed), and the failure count is cleared, which also issues
        the owner token. All at once."""
        remembering = [self.verifier.remember_accepted(subject, prepared, budget)] if len(prepared) else []
        if signed:
            remembering.append(self.verifier.remember_signature(subject, signed, budget))
        token = ""
        try:
            token = self.challenges.record_success(subject, stepped_up, budget)
        except HwotpError:
            # the user stays accepted, with one failure too many counted and no owner token
            logs.audit("success_not_recorded", caller=caller, user=user)
        for remembered in remembering:
            remembered()
        return token

    def _claimed_but_undecided(self, caller: str, user: str, subject: str, claim: Claim, error: HwotpError) -> None:
        """An error after the claim: a decision event and a metric all the same; the failure
        the claim counted stands when an attacker could have caused the error, else it is
        taken back."""
        counted = isinstance(error, _COUNTED_ERRORS)
        if counted:
            self._note_failure(caller, user, claim)
        else:
            try:
                self.challenges.forgive(subject, Budget(1.0))
            except HwotpError:
                counted = True
        code = error.status
        self.metrics.decisions.labels("ERROR", code).inc()
        logs.audit("decision", caller=caller, user=user, decision="ERROR", reason=code, counted=counted,
                   message=str(error))

    def _note_failure(self, caller: str, user: str, claim: Claim) -> None:
        """The claim counted this failure; past the threshold it is a lockout event."""
        if claim.throttling:
            state = "disabled" if claim.disabled else "throttled"
            self.metrics.lockouts.labels(state).inc()
            logs.audit("lockout", caller=caller, user=user, state=state, consecutive_failures=claim.failures)

    def _active_defence(self, caller: str, user: str, subject: str, length: int, budget: Budget) -> None:
        """A near miss: longer challenges from now on, and the real user is alerted."""
        try:
            self.challenges.step_up(subject, budget)
        except HwotpError:
            logs.audit("step_up_not_recorded", caller=caller, user=user)
        logs.audit("near_miss", caller=caller, user=user, challenge_length=length)
        self.metrics.near_misses.inc()
        if self.alerts:
            self.alerts.notify({"event": "near_miss", "caller": caller, "user_id": user, "at": int(time.time()),
                                "challenge_length": length})

    def _decided(self, caller: str, user: str, decision: Decision, details: dict | None = None) -> Decision:
        result = "ACCEPT" if decision.accepted else "REJECT"
        reason = decision.reason.name
        self.metrics.decisions.labels(result, reason).inc()
        logs.audit("decision", caller=caller, user=user, decision=result, reason=reason, **(details or {}))
        return decision
