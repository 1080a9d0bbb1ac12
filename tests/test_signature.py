"""The signature factor through the public API of a real stack: SVC2004 users' signatures
enrolled and answered as strokes; genuine accepted, skilled forgery rejected, replay
rejected, malformed strokes rejected without using the challenge up."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from hwotp.v1 import gateway_pb2, handwriting_pb2
from local.handwriting import signature_box
from tests.conftest import key_of, subject_of, submit

pytestmark = pytest.mark.integration
ADMIN = gateway_pb2.OwnerProof(admin_override=True)


def challenge(gateway, user: str, factor=gateway_pb2.FACTOR_SIGNATURE) -> gateway_pb2.BeginChallengeResponse:
    return gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user, factor=factor), timeout=10)


def answer(gateway, user: str, began, strokes) -> gateway_pb2.SubmitChallengeResponse:
    return submit(gateway, user, began, [signature_box(strokes)])


def test_a_signature_login_end_to_end(gateway, writers, signer):
    signed, genuine, forged = signer
    user = "signer@example.com"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    with pytest.raises(grpc.RpcError) as refused:
        challenge(gateway, user)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no enrolled signature" in \
        refused.value.details()
    enrolment = gateway_pb2.EnrollSignatureRequest(user_id=user, signatures=[signature_box(signed[n])
                                                                             for n in range(1, 6)])
    with pytest.raises(grpc.RpcError) as refused:
        gateway.EnrollSignature(enrolment, timeout=30)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    enrolment.proof.CopyFrom(ADMIN)
    assert gateway.EnrollSignature(enrolment, timeout=30).signatures_enrolled == 5

    began = challenge(gateway, user)
    assert (began.digits, began.signature) == ("", True)
    accepted = answer(gateway, user, began, signed[genuine[0]])
    assert (accepted.decision, accepted.reason) == (gateway_pb2.ACCEPT, gateway_pb2.ACCEPTED) and accepted.owner_token
    # the same signature again is a replayed capture
    assert answer(gateway, user, challenge(gateway, user), signed[genuine[0]]).reason == gateway_pb2.REPLAY
    # a skilled forgery of the data set
    forgery = answer(gateway, user, challenge(gateway, user), signed[forged[0]])
    assert (forgery.decision, forgery.reason) == (gateway_pb2.REJECT, gateway_pb2.WRITER_MISMATCH)
    # malformed: too few points, or no strokes at all; the challenge survives and is then answered
    began = challenge(gateway, user)
    few = [signed[genuine[1]][0][:3]]
    for boxes in ([signature_box(few)], [handwriting_pb2.Handwriting(image=b"not strokes")]):
        with pytest.raises(grpc.RpcError) as refused:
            submit(gateway, user, began, boxes)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert answer(gateway, user, began, signed[genuine[1]]).reason == gateway_pb2.ACCEPTED
    # a used challenge stays used
    assert answer(gateway, user, began, signed[genuine[1]]).reason == gateway_pb2.ALREADY_USED


def test_digits_and_signature_ask_for_one_more_box(gateway, writers, signer):
    signed = signer[0]
    user = "both@example.com"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    gateway.EnrollSignature(gateway_pb2.EnrollSignatureRequest(
        user_id=user, signatures=[signature_box(signed[n]) for n in range(1, 6)], proof=ADMIN), timeout=30)
    began = challenge(gateway, user, gateway_pb2.FACTOR_DIGITS_AND_SIGNATURE)
    assert len(began.digits) == 6 and began.signature
    with pytest.raises(grpc.RpcError) as refused:  # the digits without the signature
        submit(gateway, user, began, writers[0].write(began.digits))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "7 boxes" in refused.value.details()


def test_a_malformed_signature_enrolment_is_refused_and_nothing_stored(gateway, writers, signer):
    signed = signer[0]
    user = "bad-signer@example.com"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    nan = signature_box(signed[1])
    nan.strokes[0].points[0].x = float("nan")
    cases = {
        "4 signatures given": [signature_box(signed[n]) for n in range(1, 5)],
        "not a finite number": [nan] + [signature_box(signed[n]) for n in range(2, 6)],
        "must come as strokes": [handwriting_pb2.Handwriting(image=b"png")] + [signature_box(signed[n])
                                                                              for n in range(2, 6)],
        "almost identical": [signature_box(signed[1])] * 2 + [signature_box(signed[n]) for n in range(3, 6)],
    }
    for message, boxes in cases.items():
        with pytest.raises(grpc.RpcError) as refused:
            gateway.EnrollSignature(gateway_pb2.EnrollSignatureRequest(user_id=user, signatures=boxes, proof=ADMIN),
                                    timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in refused.value.details()
    with pytest.raises(grpc.RpcError) as refused:
        challenge(gateway, user)
    assert "no enrolled signature" in refused.value.details()


def test_deleting_the_enrolment_deletes_the_signature_and_its_history(gateway, stack, writers, signer):
    signed, genuine, _ = signer
    user = "leaving-signer@example.com"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    gateway.EnrollSignature(gateway_pb2.EnrollSignatureRequest(
        user_id=user, signatures=[signature_box(signed[n]) for n in range(1, 6)], proof=ADMIN), timeout=30)
    assert answer(gateway, user, challenge(gateway, user), signed[genuine[0]]).reason == gateway_pb2.ACCEPTED
    client, subject = stack.redis.client(), subject_of(stack, user)
    assert client.exists(key_of(subject, "sig")) and client.exists(key_of(subject, "sga"))
    gateway.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(user_id=user, proof=ADMIN), timeout=10)
    assert not client.exists(key_of(subject, "sig")) and not client.exists(key_of(subject, "sga"))
