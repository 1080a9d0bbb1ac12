"""The login flow in-process, with fakes of the three internal services: every reason a
submission ends with, the fail-closed paths, step-up, owner proofs and tenancy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from gateway.admission import Admission
from gateway.budget import Budget
from gateway.flow import LoginFlow, Proof, Sample
from gateway.ports import Enrolled, Enrolment, Reading, SignatureVerdict, Verdict, Written
from hwotp.canvas import png_of
from hwotp.config import GatewaySettings
from hwotp.errors import (DeadlineExceeded, FailedPrecondition, InvalidInput, NotFound, PermissionDenied,
                          ResourceExhausted, Unavailable)
from hwotp.metrics import Metrics
from hwotp.outcomes import Claim, ClaimStatus, Issued, Lockout, Reason
from hwotp.subjects import Subjects

DIGITS, IN_TIME, DEADLINE = "483920", 1_000, 2_000
SUBJECTS = Subjects(bytes(32))


def _box() -> bytes:
    field_ = np.zeros((28, 28), dtype=np.float32)
    field_[6:22, 12:16] = 1.0
    return png_of(field_)


BOX = _box()


def _raise(error: Exception):
    raise error


@dataclass
class FakeChallenges:
    claim_as: Claim = field(default_factory=lambda: Claim(ClaimStatus.CLAIMED, DIGITS, DEADLINE, failures=1))
    success_error: Exception | None = None
    tokens: set = field(default_factory=set)
    calls: list = field(default_factory=list)

    def create(self, subject, length, caller, fixed_length, budget, signature="none", signature_enrolled=False):
        self.calls.append(("create", subject, length, fixed_length, signature, signature_enrolled))
        digits = "" if signature == "only" else DIGITS[: fixed_length or length or 6]
        return Issued("ch-1", digits, DEADLINE, 60, signature=signature != "none")

    def claim(self, subject, challenge_id, boxes, budget, last_box_fits_signature=False):
        self.calls.append(("claim", subject, challenge_id, boxes))
        if self.claim_as.signature and not last_box_fits_signature:
            return Claim(ClaimStatus.SIGNATURE_UNFIT)
        return self.claim_as

    def record_success(self, subject, stepped_up, budget):
        self.calls.append(("record_success", subject, stepped_up))
        if self.success_error:
            raise self.success_error
        return "owner-token-1"

    def forgive(self, subject, budget):
        self.calls.append(("forgive", subject))

    def step_up(self, subject, budget):
        self.calls.append(("step_up", subject))

    def reset_lockout(self, subject, budget):
        self.calls.append(("reset_lockout", subject))
        return Lockout(3, False)

    def redeem_owner_token(self, subject, token, budget):
        self.calls.append(("redeem", subject, token))
        if (subject, token) in self.tokens:
            self.tokens.remove((subject, token))
            return True
        return False

    def forget(self, subject, budget):
        self.calls.append(("forget", subject))

    def named(self, name: str) -> list:
        return [call for call in self.calls if call[0] == name]


@dataclass
class FakeRecognizer:
    digits: str = DIGITS
    error: Exception | None = None

    def recognize(self, boxes, budget):
        if self.error:
            raise self.error
        return [Reading(int(d), 0.99) for d in self.digits[: len(boxes)]]


@dataclass
class FakeVerifier:
    verdict: Verdict = field(default_factory=lambda: Verdict(True, DIGITS, [False] * 6, scores=[1.0] * 6,
                                                              passed=[True] * 6, policy="all_pass"))
    verify_error: Exception | None = None
    remember_error: Exception | None = None
    enrolment_as: Enrolment = field(default_factory=lambda: Enrolment(True, True, 0))
    signature_as: SignatureVerdict = field(default_factory=lambda: SignatureVerdict(True, False, 2.0))
    calls: list = field(default_factory=list)

    def enrol_signature(self, subject, signatures, budget):
        self.calls.append(("enrol_signature", subject, len(signatures)))
        return Enrolled("signature-test", len(signatures))

    def verify_signature(self, subject, signature, budget):
        self.calls.append(("verify_signature", subject, signature))
        return lambda: self.signature_as

    def remember_signature(self, subject, signature, budget):
        self.calls.append(("remember_signature", subject, signature))
        return lambda: None

    def enrol(self, subject, boxes, digits, originals, trajectories, display_samples, replace, budget):
        self.calls.append(("enrol", subject, replace))
        return Enrolled("verifier-test", len(digits))

    def enrolment(self, subject, budget):
        return self.enrolment_as

    def verify(self, subject, boxes, displayed, budget, strict=False):
        self.calls.append(("verify", subject, displayed) + (("strict",) if strict else ()))
        return (lambda: _raise(self.verify_error)) if self.verify_error else (lambda: self.verdict)

    def remember_accepted(self, subject, boxes, budget):
        self.calls.append(("remember", subject, len(boxes)))
        return (lambda: _raise(self.remember_error)) if self.remember_error else (lambda: None)

    def delete(self, subject, budget):
        self.calls.append(("delete", subject))
        return True

    def set_repositioning(self, subject, scheme, budget):
        self.calls.append(("reposition", subject, scheme))
        return bool(scheme)

    def display_templates(self, subject, digits, budget):
        return []


class Alerts:
    def __init__(self):
        self.sent = []

    def notify(self, payload: dict) -> None:
        self.sent.append(payload)


@dataclass
class Flow:
    challenges: FakeChallenges = field(default_factory=FakeChallenges)
    recognizer: FakeRecognizer = field(default_factory=FakeRecognizer)
    verifier: FakeVerifier = field(default_factory=FakeVerifier)
    alerts: Alerts = field(default_factory=Alerts)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self):
        self.flow = LoginFlow(GatewaySettings(admin_callers="bank"), self.challenges, self.recognizer, self.verifier,
                              SUBJECTS, Admission(1000, 1000, 2), Metrics("gateway", self.registry), self.alerts)

    def submit(self, arrived_ms: int = IN_TIME, boxes: int = 6, caller: str = "bank"):
        return self.flow.submit(caller, "alice", "ch-1", [Written(BOX)] * boxes, arrived_ms, Budget(5.0))

    def decisions(self, decision: str, reason: str) -> float:
        return self.registry.get_sample_value("hwotp_decisions_total", {"decision": decision, "reason": reason}) or 0


ALICE = SUBJECTS.of("bank", "alice")


def test_an_accepted_answer_is_remembered_clears_failures_and_returns_an_owner_token():
    run = Flow()
    decision = run.submit()
    assert (decision.accepted, decision.reason, decision.owner_token) == (True, Reason.ACCEPTED, "owner-token-1")
    assert run.challenges.named("claim") == [("claim", ALICE, "ch-1", 6)]
    assert run.challenges.named("record_success") == [("record_success", ALICE, False)]
    assert ("remember", ALICE, 6) in run.verifier.calls
    assert run.decisions("ACCEPT", "ACCEPTED") == 1


@pytest.mark.parametrize("status, reason", [(ClaimStatus.UNKNOWN, Reason.UNKNOWN_CHALLENGE),
                                            (ClaimStatus.EXPIRED, Reason.EXPIRED),
                                            (ClaimStatus.ALREADY_USED, Reason.ALREADY_USED),
                                            (ClaimStatus.LOCKED, Reason.LOCKED)])
def test_a_challenge_that_cannot_be_claimed_is_rejected_without_asking_the_models(status, reason):
    run = Flow(FakeChallenges(claim_as=Claim(status)))
    decision = run.submit()
    assert (decision.accepted, decision.reason, decision.owner_token) == (False, reason, "")
    assert run.verifier.calls == [] and run.decisions("REJECT", reason.name) == 1


@pytest.mark.parametrize("change, reason", [
    (lambda run: setattr(run.recognizer, "digits", "483929"), Reason.WRONG_DIGITS),
    (lambda run: setattr(run.verifier, "verdict", Verdict(False, DIGITS, [False] * 6)), Reason.WRITER_MISMATCH),
    (lambda run: setattr(run.verifier, "verdict", Verdict(True, DIGITS, [False, True] + [False] * 4)), Reason.REPLAY),
])
def test_every_rejection_by_the_models_is_counted_and_nothing_remembered(change, reason):
    run = Flow()
    change(run)
    decision = run.submit()
    assert (decision.accepted, decision.reason) == (False, reason)
    assert not run.challenges.named("record_success") and not [c for c in run.verifier.calls if c[0] == "remember"]
    assert run.decisions("REJECT", reason.name) == 1


def test_a_late_answer_is_expired_even_when_perfect():
    assert Flow().submit(arrived_ms=DEADLINE + 1).reason is Reason.EXPIRED


def test_the_secret_order_decides_which_digit_each_box_holds():
    run = Flow(recognizer=FakeRecognizer(DIGITS[::-1]))
    run.verifier.verdict = Verdict(True, DIGITS[::-1], [False] * 6)
    assert run.submit().reason is Reason.ACCEPTED
    assert run.verifier.calls[0] == ("verify", ALICE, [int(c) for c in DIGITS])  # the digits as shown


def test_templates_deleted_since_the_challenge_is_not_enrolled():
    run = Flow(verifier=FakeVerifier(verify_error=NotFound("user is not enrolled")))
    assert run.submit().reason is Reason.NOT_ENROLLED and run.decisions("REJECT", "NOT_ENROLLED") == 1


def test_a_throttled_or_wrongly_sized_answer_uses_nothing_up():
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.THROTTLED, retry_after_ms=1500)))
    with pytest.raises(ResourceExhausted) as refused:
        run.submit()
    assert refused.value.retry_after_s == 2 and run.verifier.calls == []
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.WRONG_LENGTH, length=6)))
    with pytest.raises(InvalidInput, match="5 boxes for a challenge of 6 boxes"):
        run.submit(boxes=5)
    assert run.verifier.calls == []


@pytest.mark.parametrize("break_it, error, counted", [
    (lambda run: setattr(run.recognizer, "error", DeadlineExceeded("recognizer did not answer in time")),
     DeadlineExceeded, True),
    (lambda run: setattr(run.verifier, "verify_error", Unavailable("verifier is unavailable")), Unavailable, True),
    (lambda run: setattr(run.verifier, "remember_error", Unavailable("verifier is unavailable")), Unavailable, True),
    (lambda run: setattr(run.verifier, "verify_error", FailedPrecondition("the scheme does not fit")),
     FailedPrecondition, False),
])
def test_errors_after_the_claim_fail_closed_and_are_on_record(break_it, error, counted):
    run = Flow()
    break_it(run)
    with pytest.raises(error):
        run.submit()
    assert run.decisions("ERROR", error.status) == 1 and run.decisions("ACCEPT", "ACCEPTED") == 0
    # the system's own failures are taken back; those an attacker could cause are not
    assert (run.challenges.named("forgive") == []) is counted


def test_an_accepted_answer_stays_accepted_when_its_success_cannot_be_recorded():
    run = Flow(FakeChallenges(success_error=Unavailable("challenge is unavailable")))
    decision = run.submit()
    assert (decision.accepted, decision.owner_token) == (True, "")


def test_a_near_miss_steps_up_and_alerts_the_real_user():
    run = Flow()
    run.verifier.verdict = Verdict(False, DIGITS, [False] * 6, near_miss=True)
    assert run.submit().reason is Reason.WRITER_MISMATCH
    assert run.challenges.named("step_up") == [("step_up", ALICE)]
    assert [(a["event"], a["user_id"], a["challenge_length"]) for a in run.alerts.sent] == [("near_miss", "alice", 6)]
    assert run.registry.get_sample_value("hwotp_near_misses_total") == 1


def test_failures_past_the_threshold_are_lockout_events_and_judged_strictly():
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.CLAIMED, DIGITS, DEADLINE, failures=5, throttling=True)))
    run.verifier.verdict = Verdict(False, DIGITS, [False] * 6)
    run.submit()
    assert run.registry.get_sample_value("hwotp_lockouts_total", {"state": "throttled"}) == 1
    verified = [call for call in run.verifier.calls if call[0] == "verify"]
    assert verified == [("verify", ALICE, [int(d) for d in DIGITS], "strict")]
    relaxed = Flow()
    relaxed.submit()
    assert [call for call in relaxed.verifier.calls if call[0] == "verify"] == [("verify", ALICE, [int(d) for d in DIGITS])]


def test_each_relying_party_has_its_own_alice():
    run = Flow()
    run.submit(caller="bank")
    run.submit(caller="shop")
    assert [c[1] for c in run.challenges.named("claim")] == [ALICE, SUBJECTS.of("shop", "alice")]
    assert ALICE != SUBJECTS.of("shop", "alice")


def test_begin_fits_the_scheme_and_refuses_users_it_cannot_challenge():
    run = Flow()
    run.verifier.enrolment_as = Enrolment(True, True, fixed_length=8)
    began = run.flow.begin("bank", "alice", 6, False, Budget(5.0))
    assert run.challenges.named("create") == [("create", ALICE, 6, 8, "none", False)] and len(began.digits) == 6
    pictured = run.flow.begin("bank", "alice", 0, True, Budget(5.0))
    assert pictured.digits == "" and pictured.digits_image.startswith(b"\x89PNG")
    for enrolment, message in ((Enrolment(False), "not enrolled"), (Enrolment(True, False), "re-enrolment required")):
        run.verifier.enrolment_as = enrolment
        with pytest.raises(FailedPrecondition, match=message):
            run.flow.begin("bank", "alice", 0, False, Budget(5.0))


ENROLMENT_DIGITS = "".join(str(d) * 3 for d in range(10))


def _enrol(run: Flow, proof: Proof, caller: str = "bank"):
    samples = [Sample(d, Written(BOX)) for d in range(10) for _ in range(3)]
    return run.flow.enrol(caller, "alice", samples, [], proof, Budget(5.0))


def test_changes_to_an_enrolled_user_need_the_owners_proof():
    run = Flow(recognizer=FakeRecognizer(ENROLMENT_DIGITS))
    _enrol(run, Proof())
    assert run.verifier.calls[-1] == ("enrol", ALICE, False)  # the verifier refuses it if alice is enrolled
    run.challenges.tokens.add((ALICE, "token-of-alice"))
    _enrol(run, Proof(owner_token="token-of-alice"))
    assert run.verifier.calls[-1] == ("enrol", ALICE, True)
    with pytest.raises(PermissionDenied, match="owner_token"):  # used once only
        _enrol(run, Proof(owner_token="token-of-alice"))
    _enrol(run, Proof(admin_override=True))
    assert run.verifier.calls[-1] == ("enrol", ALICE, True)
    with pytest.raises(PermissionDenied, match="may not override"):
        _enrol(run, Proof(admin_override=True), caller="shop")
    for change in (lambda: run.flow.delete("bank", "alice", Proof(), Budget(5.0)),
                   lambda: run.flow.set_repositioning("bank", "alice", "reverse", Proof(), Budget(5.0)),
                   lambda: run.flow.reset_lockout("shop", "alice", Budget(5.0))):
        with pytest.raises(PermissionDenied):
            change()
    assert run.flow.delete("bank", "alice", Proof(admin_override=True), Budget(5.0))
    assert run.challenges.named("forget") == [("forget", ALICE)]


def test_an_enrolment_sample_read_confidently_as_another_digit_is_refused():
    run = Flow(recognizer=FakeRecognizer("7" * 30))
    with pytest.raises(InvalidInput, match=r"sample 0 \(labelled 0\) reads as 7;"):
        _enrol(run, Proof())
    assert not [c for c in run.verifier.calls if c[0] == "enrol"]



# --- the signature factor ---------------------------------------------------------------------

ZIGZAG = np.array([(10 + 15 * i, 20 + 40 * (i % 2)) for i in range(12)], dtype=np.float32)
SIGNED = Written(b"", [ZIGZAG], b"signature-strokes", fits_signature=True)
STROKE = Written(b"", [np.array([(14, 4), (14, 24)], dtype=np.float32)], b"a-one")


def _signed(boxes: int, fits: bool = True) -> list[Written]:
    """An answer as strokes: `boxes` digits, then the signature (or 3 points that cannot be one)."""
    return [STROKE] * boxes + [SIGNED if fits else Written(b"", [ZIGZAG[:3]], b"three-points")]


def test_a_signature_alone_is_checked_by_the_signature_verifier_only_and_remembered_when_accepted():
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.CLAIMED, "", DEADLINE, failures=1, signature=True)))
    decision = run.flow.submit("bank", "alice", "ch-1", _signed(0), IN_TIME, Budget(5.0))
    assert (decision.accepted, decision.reason) == (True, Reason.ACCEPTED)
    assert [c[0] for c in run.verifier.calls] == ["verify_signature", "remember_signature"]
    assert run.verifier.calls[0] == ("verify_signature", ALICE, b"signature-strokes")


@pytest.mark.parametrize("verdict, reason", [(SignatureVerdict(False, False, -3.0), Reason.WRITER_MISMATCH),
                                             (SignatureVerdict(True, True, 9.0), Reason.REPLAY)])
def test_digits_right_but_the_signature_forged_or_replayed_is_rejected_and_counted(verdict, reason):
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.CLAIMED, DIGITS, DEADLINE, failures=1, signature=True)))
    run.verifier.signature_as = verdict
    decision = run.flow.submit("bank", "alice", "ch-1", _signed(6), IN_TIME, Budget(5.0))
    assert (decision.accepted, decision.reason) == (False, reason)
    assert ("verify", ALICE, [int(c) for c in DIGITS]) in run.verifier.calls  # the digits' boxes only
    assert not [c for c in run.verifier.calls if c[0].startswith("remember")]
    assert run.decisions("REJECT", reason.name) == 1


def test_a_signature_box_that_cannot_be_a_signature_uses_nothing_up():
    run = Flow(FakeChallenges(claim_as=Claim(ClaimStatus.CLAIMED, DIGITS, DEADLINE, failures=1, signature=True)))
    with pytest.raises(InvalidInput, match="signature: its box must come as strokes"):
        run.flow.submit("bank", "alice", "ch-1", _signed(6, fits=False), IN_TIME, Budget(5.0))
    assert run.verifier.calls == [] and run.decisions("REJECT", "WRITER_MISMATCH") == 0


def test_a_signature_challenge_needs_an_enrolled_signature_and_a_step_up_adds_it_when_there_is_one():
    run = Flow()
    with pytest.raises(FailedPrecondition, match="no enrolled signature"):
        run.flow.begin("bank", "alice", 0, False, Budget(5.0), "only")
    run.verifier.enrolment_as = Enrolment(True, True, 0, signature=True)
    began = run.flow.begin("bank", "alice", 0, False, Budget(5.0), "only")
    assert (began.digits, began.signature) == ("", True)
    run.flow.begin("bank", "alice", 0, False, Budget(5.0))
    assert run.challenges.named("create")[-1][-2:] == ("none", True)  # the challenge service may add it


def test_enrolling_a_signature_needs_the_digits_enrolled_and_the_owners_proof():
    run = Flow()
    run.verifier.enrolment_as = Enrolment(False)
    with pytest.raises(FailedPrecondition, match="enrol the digits first"):
        run.flow.enrol_signature("bank", "alice", [b"s"] * 5, Proof(), Budget(5.0))
    run.verifier.enrolment_as = Enrolment(True, True, 0)
    with pytest.raises(PermissionDenied, match="owner_token"):
        run.flow.enrol_signature("bank", "alice", [b"s"] * 5, Proof(), Budget(5.0))
    run.challenges.tokens.add((ALICE, "token-1"))
    assert run.flow.enrol_signature("bank", "alice", [b"s"] * 5, Proof("token-1"), Budget(5.0)).samples == 5
    assert ("enrol_signature", ALICE, 5) in run.verifier.calls
