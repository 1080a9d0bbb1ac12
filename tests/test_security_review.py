"""The findings of the security review (SECURITY.md, "Review findings"), each against real
processes: redis-server and the four services, two relying parties where tenancy matters."""

from __future__ import annotations

import io
import json
import math
import secrets
import signal
import threading
import urllib.request

import grpc
import numpy as np
import pytest
import redis
from PIL import Image

from hwotp.client import key_hash, retry_after_s
from hwotp.v1 import gateway_pb2, handwriting_pb2
from tests.conftest import begin, submit

pytestmark = pytest.mark.integration
rng = np.random.default_rng(31)
# Logins repeat far faster than people's; what each test examines is set on its own stack.
LENIENT = {"HWOTP_RATE_PER_USER": "100000", "HWOTP_LOCKOUT_THROTTLE_AFTER": "100000",
           "HWOTP_LOCKOUT_DISABLE_AFTER": "100000", "HWOTP_MAX_PENDING_CHALLENGES": "100000"}


class Callers:
    """A stack with two relying parties, "bank" and "shop", and the administrators `admins`."""

    def __init__(self, stacks, admins: str, **env):
        keys = {name: secrets.token_urlsafe(32) for name in ("bank", "shop")}
        self.stack = stacks(relaxed=False, **{
            **LENIENT, "HWOTP_REPLAY_THRESHOLD": "2",
            "HWOTP_API_KEYS": ",".join(f"{n}:{key_hash(k)}" for n, k in keys.items()),
            "HWOTP_API_KEY": keys["bank"], "HWOTP_ADMIN_CALLERS": admins, **env})
        self.bank, self.shop = (stacks.stub(self.stack, keys[n]) for n in ("bank", "shop"))


@pytest.fixture
def callers(stacks):
    return lambda admins="bank", **env: Callers(stacks, admins, **env)


@pytest.fixture
def own(stacks):
    def make(**env):
        running = stacks(relaxed=False, **{**LENIENT, **env})
        return running, stacks.stub(running)

    return make


def login(gateway, user: str, writer, length: int = 0) -> gateway_pb2.SubmitChallengeResponse:
    challenge = begin(gateway, user, length)
    return submit(gateway, user, challenge, writer.write(challenge.digits, rng))


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def audit_events(stack) -> list[dict]:
    lines = (stack.workdir / "gateway.log").read_text().splitlines()
    return [entry for entry in map(json.loads, filter(None, lines)) if entry.get("logger") == "hwotp.audit"]


def metric(address: str, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}" if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- critical: relying parties are isolated; changes to an enrolled user need the owner's proof ---

def test_one_relying_party_cannot_reach_anothers_users(callers, writers):
    genuine, impostor = writers
    run = callers(admins="bank,shop", HWOTP_RATE_PER_USER="5")
    override = gateway_pb2.OwnerProof(admin_override=True)
    run.bank.Enroll(genuine.enrolment("alice"), timeout=30)
    # the shop enrols "alice" with an impostor's hand: that is the shop's own alice, not the bank's
    run.shop.Enroll(impostor.enrolment("alice"), timeout=30)
    assert login(run.bank, "alice", impostor).reason == gateway_pb2.WRITER_MISMATCH
    assert login(run.bank, "alice", genuine).decision == gateway_pb2.ACCEPT
    # the shop's changes to its alice, even an administrator's, never touch the bank's
    run.shop.SetRepositioning(gateway_pb2.SetRepositioningRequest(user_id="alice", scheme="reverse", proof=override),
                              timeout=5)
    assert login(run.shop, "alice", impostor).reason == gateway_pb2.WRONG_DIGITS  # written as shown
    for _ in range(4):  # the shop exhausts its alice's issuance rate ...
        begin(run.shop, "alice")
    assert code_of(lambda: begin(run.shop, "alice")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert login(run.bank, "alice", genuine).decision == gateway_pb2.ACCEPT  # ... not the bank's
    # a user enrolled only at the bank is as unknown to the shop as a user enrolled nowhere
    run.bank.Enroll(genuine.enrolment("bob"), timeout=30)
    for user in ("bob", "nobody"):
        with pytest.raises(grpc.RpcError) as error:
            begin(run.shop, user)
        assert (error.value.code(), error.value.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                               "user is not enrolled")
    # each administrator resets and deletes only its own users
    assert login(run.bank, "alice", impostor).reason == gateway_pb2.WRITER_MISMATCH
    assert run.bank.ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="alice"), timeout=5).failures_cleared == 1
    assert run.shop.ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="alice"), timeout=5).failures_cleared == 1
    assert run.shop.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(user_id="bob", proof=override),
                                     timeout=5).deleted is False
    assert run.shop.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(user_id="alice", proof=override),
                                     timeout=5).deleted
    assert begin(run.bank, "bob").digits and begin(run.bank, "alice").digits
    # every audit event names its caller
    events = audit_events(run.stack)
    assert {"enrolment", "enrolment_deleted", "repositioning_set", "challenge", "decision",
            "lockout_reset", "admin_override"} <= {e["event"] for e in events}
    assert all(e.get("caller") in ("bank", "shop") for e in events)
    assert {e["caller"] for e in events if e["event"] == "enrolment" and e["user"] == "alice"} == {"bank", "shop"}


def test_reenrolment_repositioning_and_deletion_need_the_owners_proof(callers, writers):
    genuine, impostor = writers
    run = callers(admins="bank")
    run.bank.Enroll(genuine.enrolment("carol"), timeout=30)
    run.shop.Enroll(genuine.enrolment("carol"), timeout=30)

    def reenrol(stub, proof=None):
        request = impostor.enrolment("carol")
        if proof:
            request.proof.CopyFrom(proof)
        return stub.Enroll(request, timeout=30)

    def token(stub):
        answer = login(stub, "carol", genuine)
        assert answer.decision == gateway_pb2.ACCEPT and answer.owner_token
        return gateway_pb2.OwnerProof(owner_token=answer.owner_token)

    assert code_of(lambda: reenrol(run.bank)) == grpc.StatusCode.FAILED_PRECONDITION
    bogus = gateway_pb2.OwnerProof(owner_token=secrets.token_urlsafe(32))
    assert code_of(lambda: reenrol(run.bank, bogus)) == grpc.StatusCode.PERMISSION_DENIED
    # another relying party's token of its own "carol" proves nothing at the bank
    assert code_of(lambda: reenrol(run.bank, token(run.shop))) == grpc.StatusCode.PERMISSION_DENIED
    for change in (lambda: run.bank.SetRepositioning(gateway_pb2.SetRepositioningRequest(
                       user_id="carol", scheme="reverse"), timeout=5),
                   lambda: run.bank.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(user_id="carol"), timeout=5),
                   lambda: run.shop.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(
                       user_id="carol", proof=gateway_pb2.OwnerProof(admin_override=True)), timeout=5)):
        assert code_of(change) == grpc.StatusCode.PERMISSION_DENIED
    assert login(run.bank, "carol", impostor).reason == gateway_pb2.WRITER_MISMATCH  # nothing changed
    # the owner's fresh login proves it, once
    proof = token(run.bank)
    assert reenrol(run.bank, proof).samples_enrolled == 30
    assert code_of(lambda: reenrol(run.bank, proof)) == grpc.StatusCode.PERMISSION_DENIED
    # an administrator may override, and it is audited
    run.bank.Enroll(gateway_pb2.EnrollRequest(user_id="carol", samples=genuine.enrolment("carol").samples,
                                              proof=gateway_pb2.OwnerProof(admin_override=True)), timeout=30)
    assert login(run.bank, "carol", genuine).decision == gateway_pb2.ACCEPT
    events = audit_events(run.stack)
    assert [(e["caller"], e["user"], e["action"]) for e in events if e["event"] == "admin_override"] == \
        [("bank", "carol", "re-enrolment")]
    assert [e["replaced"] for e in events if e["event"] == "enrolment" and e["caller"] == "bank"] == \
        [False, True, True]


# --- high -----------------------------------------------------------------------------------------

def test_calls_without_a_key_are_refused_before_their_message(own, writers):
    running, gateway = own(HWOTP_WORKERS="4")
    gateway.Enroll(writers[0].enrolment("dan"), timeout=30)
    never = threading.Event()

    def no_message():
        never.wait()
        yield b""

    with grpc.insecure_channel(running.gateway) as channel:
        # headers sent, no message ever: more such calls than the gateway has workers
        stall = channel.stream_unary("/hwotp.v1.Gateway/BeginChallenge")
        calls = [stall.future(no_message(), timeout=120) for _ in range(12)]
        codes = [call.exception(timeout=60).code() for call in calls]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 12 and not never.is_set()
        assert login(gateway, "dan", writers[0]).decision == gateway_pb2.ACCEPT
    never.set()


def test_rejected_answers_cannot_flush_the_replay_history(own, writers):
    genuine, impostor = writers
    _, gateway = own(HWOTP_REPLAY_THRESHOLD="0.98")
    gateway.Enroll(genuine.enrolment("erin"), timeout=30)
    challenge = begin(gateway, "erin", 10)
    captured = genuine.write(challenge.digits, rng)
    assert submit(gateway, "erin", challenge, captured).decision == gateway_pb2.ACCEPT
    by_digit = dict(zip(challenge.digits, captured))
    for _ in range(25):  # 250 rejected boxes: more than the old history held
        assert login(gateway, "erin", impostor, 10).decision == gateway_pb2.REJECT
    again = begin(gateway, "erin", 10)
    replayed = submit(gateway, "erin", again, [by_digit[d] for d in again.digits])
    assert (replayed.decision, replayed.reason) == (gateway_pb2.REJECT, gateway_pb2.REPLAY)


def test_display_templates_are_never_the_enrolment_samples_nor_an_answer(own, writers):
    _, gateway = own(HWOTP_REPLAY_THRESHOLD="0.98", HWOTP_DISPLAY_TEMPLATES="true")
    request = writers[0].enrolment("fay")
    gateway.Enroll(request, timeout=30)
    enrolled = {sample.handwriting.image for sample in request.samples}
    challenge = begin(gateway, "fay", 10)
    assert len(challenge.display_templates) == 10 and not enrolled & set(challenge.display_templates)
    shown = [handwriting_pb2.Handwriting(image=image) for image in challenge.display_templates]
    answer = submit(gateway, "fay", challenge, shown)
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.REPLAY)


# --- medium ---------------------------------------------------------------------------------------

def _png(side: int) -> bytes:
    canvas = np.full((side, side), 255, dtype=np.uint8)
    canvas[side // 4: 3 * side // 4, side // 2 - side // 40: side // 2 + side // 40] = 0  # a "1"
    out = io.BytesIO()
    Image.fromarray(canvas).save(out, format="PNG")
    return out.getvalue()


def test_huge_images_are_refused_before_decoding_and_callers_are_rate_limited(own, writers):
    _, gateway = own(HWOTP_CALLER_SUBMITS_PER_MIN="2", HWOTP_CALLER_ENROLS_PER_MIN="1")
    gateway.Enroll(writers[0].enrolment("gus"), timeout=30)
    challenge = begin(gateway, "gus")
    huge = [handwriting_pb2.Handwriting(image=_png(4096))] * len(challenge.digits)
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "gus", challenge, huge)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pixels" in error.value.details()
    # nothing was used up or counted
    assert submit(gateway, "gus", challenge, writers[0].write(challenge.digits, rng)).decision == gateway_pb2.ACCEPT
    again = begin(gateway, "gus")
    with pytest.raises(grpc.RpcError) as error:  # the third submission within a minute
        submit(gateway, "gus", again, writers[0].write(again.digits, rng))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_after_s(error.value) >= 1
    assert code_of(lambda: gateway.Enroll(writers[0].enrolment("hal"), timeout=30)) == \
        grpc.StatusCode.RESOURCE_EXHAUSTED


def test_the_throttle_holds_when_answering_and_pending_challenges_are_capped(own, writers):
    _, gateway = own(HWOTP_LOCKOUT_THROTTLE_AFTER="3", HWOTP_MAX_PENDING_CHALLENGES="6")
    gateway.Enroll(writers[0].enrolment("ida"), timeout=30)
    issued = [begin(gateway, "ida") for _ in range(7)]  # all while the failure count is 0
    answers = [submit(gateway, "ida", c, writers[1].write(c.digits, rng)) for c in issued[1:4]]
    assert [a.reason for a in answers] == [gateway_pb2.WRITER_MISMATCH] * 3
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "ida", issued[4], writers[1].write(issued[4].digits, rng))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 29 <= retry_after_s(error.value) <= 30
    # the seventh challenge cancelled the first: at most six were pending
    first = submit(gateway, "ida", issued[0], writers[0].write(issued[0].digits, rng))
    assert first.reason == gateway_pb2.EXPIRED


def test_strokes_are_bounded_and_redis_cannot_be_filled(own, writers):
    running, gateway = own()
    for points, value, rule in ((2, math.nan, "not a finite number"), (5000, 1.0, "at most 4096")):
        request = writers[0].enrolment("jay")
        request.samples[3].handwriting.strokes.append(handwriting_pb2.Stroke(points=[
            handwriting_pb2.Point(x=value, y=1, t_ms=i) for i in range(points)]))
        with pytest.raises(grpc.RpcError) as error:
            gateway.Enroll(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sample 3" in error.value.details() and rule in error.value.details()
    assert "not enrolled" in pytest.raises(grpc.RpcError, begin, gateway, "jay").value.details()
    store = running.redis.client()
    assert store.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    limit = int(store.config_get("maxmemory")["maxmemory"])
    assert limit > 0
    challenge_metrics = running.services["challenge"].metrics_address
    for _ in range(300):  # the gauge follows the readiness polling, once a second
        if metric(challenge_metrics, "hwotp_redis_maxmemory_bytes"):
            break
        threading.Event().wait(0.1)
    assert metric(challenge_metrics, "hwotp_redis_maxmemory_bytes") == limit
    assert metric(challenge_metrics, "hwotp_redis_memory_used_bytes") > 0


def test_step_up_fits_the_secret_scheme_and_the_systems_own_failures_do_not_count(own, writers):
    genuine, impostor = writers
    from hwotp.reposition import apply

    # every mismatch a near miss (no box floor: a box under it is never near)
    running, gateway = own(HWOTP_NEAR_MISS_MARGIN="1000", HWOTP_BOX_FLOOR="-1000", HWOTP_REPLAY_THRESHOLD="2")
    gateway.Enroll(genuine.enrolment("kai"), timeout=30)
    scheme = "perm:5,4,3,2,1,0"
    token = login(gateway, "kai", genuine).owner_token
    gateway.SetRepositioning(gateway_pb2.SetRepositioningRequest(
        user_id="kai", scheme=scheme, proof=gateway_pb2.OwnerProof(owner_token=token)), timeout=5)
    near = begin(gateway, "kai")
    assert submit(gateway, "kai", near, impostor.write(apply(scheme, near.digits), rng)).reason == \
        gateway_pb2.WRITER_MISMATCH
    stepped = begin(gateway, "kai")
    assert stepped.stepped_up and len(stepped.digits) == 6  # the only length the scheme fits
    answer = submit(gateway, "kai", stepped, genuine.write(apply(scheme, stepped.digits), rng))
    assert answer.decision == gateway_pb2.ACCEPT
    # the scheme changes between issuance and answer: the system's doing, not counted
    pending = begin(gateway, "kai")
    gateway.SetRepositioning(gateway_pb2.SetRepositioningRequest(
        user_id="kai", scheme="perm:7,6,5,4,3,2,1,0", proof=gateway_pb2.OwnerProof(owner_token=answer.owner_token)),
        timeout=5)
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "kai", pending, genuine.write(pending.digits, rng))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "6" not in error.value.details()
    assert gateway.ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="kai"), timeout=5).failures_cleared == 0
    errors = [e for e in audit_events(running) if e["event"] == "decision" and e["decision"] == "ERROR"]
    assert [(e["reason"], e["counted"]) for e in errors] == [("FAILED_PRECONDITION", False)]


def test_every_counted_failure_leaves_a_decision_an_audit_event_and_a_metric(own, writers):
    running, gateway = own()
    gateway.Enroll(writers[0].enrolment("lou"), timeout=30)
    challenge = begin(gateway, "lou")
    # a wrong box count is bad input: nothing used up, nothing counted
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "lou", challenge, writers[0].write(challenge.digits[:-1], rng))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert submit(gateway, "lou", challenge, writers[0].write(challenge.digits, rng)).decision == gateway_pb2.ACCEPT
    # a verifier gone after the claim: counted, and on record
    pending = begin(gateway, "lou")
    verifier = running.services["verifier"].process
    verifier.send_signal(signal.SIGKILL)
    verifier.wait()
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "lou", pending, writers[0].write(pending.digits, rng))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert gateway.ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="lou"), timeout=5).failures_cleared == 1
    gateway_metrics = running.services["gateway"].metrics_address
    assert metric(gateway_metrics, "hwotp_decisions_total", decision="ERROR", reason="UNAVAILABLE") == 1
    errors = [e for e in audit_events(running) if e["event"] == "decision" and e["decision"] == "ERROR"]
    assert [(e["caller"], e["user"], e["reason"], e["counted"]) for e in errors] == \
        [("local", "lou", "UNAVAILABLE", True)]


def test_decoy_step_ups_blur_the_near_miss_signal(own, writers):
    _, gateway = own(HWOTP_STEPUP_DECOY_RATE="1", HWOTP_NEAR_MISS_MARGIN="0")
    gateway.Enroll(writers[0].enrolment("max"), timeout=30)
    challenge = begin(gateway, "max")  # no near miss ever happened
    assert challenge.stepped_up and len(challenge.digits) == 8
