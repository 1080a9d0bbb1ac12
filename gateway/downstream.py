"""The internal services over gRPC, as the login flow's interfaces (gateway.ports).

The one place where gRPC errors become domain errors, and dataclasses become
messages and back.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import grpc

from gateway.budget import Budget
from gateway.ports import Enrolled, Enrolment, Prepared, Reading, SignatureVerdict, Verdict
from hwotp import boxes, tls
from hwotp.client import RETRY_AFTER
from hwotp.config import GatewaySettings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, HwotpError, InvalidInput, NotFound, ResourceExhausted,
                          Unavailable)
from hwotp.internal.v1 import (box_pb2, challenge_pb2, challenge_pb2_grpc, recognizer_pb2, recognizer_pb2_grpc,
                               verifier_pb2, verifier_pb2_grpc)
from hwotp.outcomes import SCAN, STROKES, Claim, ClaimStatus, Issued, Lockout

_DOMAIN = {SCAN: box_pb2.DOMAIN_SCAN, STROKES: box_pb2.DOMAIN_STROKES}
_CLAIM_STATUS = {challenge_pb2.ClaimStatus.Value(f"CLAIM_STATUS_{status.name}"): status for status in ClaimStatus}


def translate(error: grpc.RpcError, service: str) -> HwotpError:
    code = error.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(error.details())
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(error.details())
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(error.details())
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry = dict(error.trailing_metadata() or ()).get(RETRY_AFTER, "1")
        return ResourceExhausted(error.details(), int(retry))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{service} did not answer in time")
    return Unavailable(f"{service} is unavailable")


class Channels:
    """One long-lived channel per service, reused by every call, and the threads for
    calls made beside another."""

    def __init__(self, settings: GatewaySettings):
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # With dns:/// targets this spreads calls over every replica.
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.keepalive_time_ms", 30000),
        ]
        credentials = tls.internal_credentials(settings)
        addresses = (settings.recognizer_addr, settings.verifier_addr, settings.challenge_addr)
        self.channels = [grpc.secure_channel(a, credentials, options=options) if credentials
                         else grpc.insecure_channel(a, options=options) for a in addresses]
        # A blocking call on a long-lived thread costs less than a gRPC future, which
        # starts a thread to drive it whenever none is in flight.
        self.beside = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="downstream")
        self.recognizer = GrpcRecognizer(recognizer_pb2_grpc.RecognizerServiceStub(self.channels[0]))
        self.verifier = GrpcVerifier(verifier_pb2_grpc.VerifierServiceStub(self.channels[1]), self.beside)
        self.challenges = GrpcChallenges(challenge_pb2_grpc.ChallengeServiceStub(self.channels[2]))

    def close(self) -> None:
        self.beside.shutdown(wait=False, cancel_futures=True)
        for channel in self.channels:
            channel.close()


class _Client:
    service = ""

    def _call(self, method, request, budget: Budget):
        try:
            return method(request, timeout=budget.remaining())
        except grpc.RpcError as error:
            raise translate(error, self.service) from None

    def _later(self, pool: ThreadPoolExecutor, method, request, budget: Budget) -> Callable:
        pending = pool.submit(method, request, timeout=budget.remaining())

        def result():
            try:
                return pending.result()
            except grpc.RpcError as error:
                raise translate(error, self.service) from None

        return result


def _lockout(state: challenge_pb2.LockoutState) -> Lockout:
    return Lockout(state.consecutive_failures, state.disabled)


class GrpcChallenges(_Client):
    service = "challenge"

    def __init__(self, stub: challenge_pb2_grpc.ChallengeServiceStub):
        self.stub = stub

    def create(self, subject: str, length: int, caller: str, fixed_length: int, budget: Budget,
               signature: str = "none", signature_enrolled: bool = False) -> Issued:
        made = self._call(self.stub.Create, challenge_pb2.CreateRequest(
            subject=subject, length=length, caller=caller, fixed_length=fixed_length,
            with_signature=signature == "with", signature_only=signature == "only",
            signature_enrolled=signature_enrolled), budget)
        return Issued(made.challenge_id, made.digits, made.expires_at_ms, made.time_limit_s, made.stepped_up,
                      made.signature)

    def claim(self, subject: str, challenge_id: str, boxes: int, budget: Budget,
              last_box_fits_signature: bool = False) -> Claim:
        got = self._call(self.stub.Claim, challenge_pb2.ClaimRequest(
            subject=subject, challenge_id=challenge_id, boxes=boxes, last_box_fits_signature=last_box_fits_signature),
            budget)
        return Claim(_CLAIM_STATUS[got.status], got.digits, got.expires_at_ms, got.consecutive_failures,
                     got.throttling, got.disabled, got.stepped_up, got.retry_after_ms, got.length, got.signature)

    def record_success(self, subject: str, stepped_up: bool, budget: Budget) -> str:
        return self._call(self.stub.RecordSuccess, challenge_pb2.RecordSuccessRequest(
            subject=subject, stepped_up=stepped_up), budget).owner_token

    def forgive(self, subject: str, budget: Budget) -> None:
        self._call(self.stub.Forgive, challenge_pb2.ForgiveRequest(subject=subject), budget)

    def step_up(self, subject: str, budget: Budget) -> None:
        self._call(self.stub.StepUp, challenge_pb2.StepUpRequest(subject=subject), budget)

    def reset_lockout(self, subject: str, budget: Budget) -> Lockout:
        return _lockout(self._call(self.stub.ResetLockout, challenge_pb2.ResetLockoutRequest(subject=subject),
                                   budget).state)

    def redeem_owner_token(self, subject: str, token: str, budget: Budget) -> bool:
        return self._call(self.stub.RedeemOwnerToken, challenge_pb2.RedeemOwnerTokenRequest(
            subject=subject, owner_token=token), budget).valid

    def forget(self, subject: str, budget: Budget) -> None:
        self._call(self.stub.Forget, challenge_pb2.ForgetRequest(subject=subject), budget)


class GrpcRecognizer(_Client):
    service = "recognizer"

    def __init__(self, stub: recognizer_pb2_grpc.RecognizerServiceStub):
        self.stub = stub

    def recognize(self, prepared: Prepared, budget: Budget) -> list[Reading]:
        read = self._call(self.stub.Recognize, recognizer_pb2.RecognizeRequest(
            boxes=boxes.from_batch(prepared.fields, prepared.fingerprints, prepared.paths)), budget)
        return [Reading(r.digit, r.confidence) for r in read.results]


class GrpcVerifier(_Client):
    service = "verifier"

    def __init__(self, stub: verifier_pb2_grpc.VerifierServiceStub, beside: ThreadPoolExecutor):
        self.stub, self.beside = stub, beside

    def enrol(self, subject: str, prepared: Prepared, digits: list[int], originals: list[bytes],
              trajectories: list[bytes], display_samples: list[int], replace: bool, budget: Budget) -> Enrolled:
        done = self._call(self.stub.Enroll, verifier_pb2.EnrollRequest(
            subject=subject, digits=digits,
            boxes=boxes.from_batch(prepared.fields, prepared.fingerprints, prepared.paths),
            originals=originals, trajectories=trajectories, display_samples=display_samples, replace=replace),
            budget)
        return Enrolled(done.model_version, done.samples)

    def enrolment(self, subject: str, budget: Budget) -> Enrolment:
        found = self._call(self.stub.GetEnrollment, verifier_pb2.GetEnrollmentRequest(subject=subject), budget)
        return Enrolment(found.enrolled, found.current, found.fixed_length, found.display_templates, found.signature)

    def verify(self, subject: str, prepared: Prepared, displayed: list[int], budget: Budget,
               strict: bool = False) -> Callable[[], Verdict]:
        request = verifier_pb2.VerifyRequest(
            subject=subject, digits=displayed, domain=_DOMAIN[prepared.domain], strict=strict,
            boxes=boxes.from_batch(prepared.fields, prepared.fingerprints, prepared.paths))
        answer = self._later(self.beside, self.stub.Verify, request, budget)

        def verdict() -> Verdict:
            found = answer()
            return Verdict(found.writer_ok, "".join(map(str, found.expected_digits)), list(found.replayed),
                           found.near_miss, list(found.scores), list(found.passed), found.policy, found.modalities)

        return verdict

    def remember_accepted(self, subject: str, prepared: Prepared, budget: Budget) -> Callable[[], None]:
        request = verifier_pb2.RememberAcceptedRequest(
            subject=subject, fingerprints=[fingerprint.tobytes() for fingerprint in prepared.fingerprints])
        return self._later(self.beside, self.stub.RememberAccepted, request, budget)

    def delete(self, subject: str, budget: Budget) -> bool:
        return self._call(self.stub.DeleteEnrollment, verifier_pb2.DeleteEnrollmentRequest(subject=subject),
                          budget).deleted

    def set_repositioning(self, subject: str, scheme: str, budget: Budget) -> bool:
        return self._call(self.stub.SetRepositioning, verifier_pb2.SetRepositioningRequest(
            subject=subject, scheme=scheme), budget).active

    def display_templates(self, subject: str, digits: list[int], budget: Budget) -> list[bytes]:
        try:
            return list(self._call(self.stub.GetDisplayTemplates, verifier_pb2.GetDisplayTemplatesRequest(
                subject=subject, digits=digits), budget).images)
        except NotFound:
            return []  # enrolled before display templates were switched on

    def enrol_signature(self, subject: str, signatures: list[bytes], budget: Budget) -> Enrolled:
        done = self._call(self.stub.EnrollSignature, verifier_pb2.EnrollSignatureRequest(
            subject=subject, signatures=signatures), budget)
        return Enrolled(done.model_version, done.signatures)

    def verify_signature(self, subject: str, signature: bytes, budget: Budget) -> Callable[[], SignatureVerdict]:
        answer = self._later(self.beside, self.stub.VerifySignature, verifier_pb2.VerifySignatureRequest(
            subject=subject, signature=signature), budget)

        def verdict() -> SignatureVerdict:
            found = answer()
            return SignatureVerdict(found.passed, found.replayed, found.score)

        return verdict

    def remember_signature(self, subject: str, signature: bytes, budget: Budget) -> Callable[[], None]:
        return self._later(self.beside, self.stub.RememberSignature, verifier_pb2.RememberSignatureRequest(
            subject=subject, signature=signature), budget)
