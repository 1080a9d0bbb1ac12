"""Thousands of malformed requests: every answer is INVALID_ARGUMENT (or a REJECT), never
INTERNAL or UNKNOWN, never an acceptance, and every service is still SERVING afterwards."""

from __future__ import annotations

import io
import random
from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from hwotp.v1 import gateway_pb2, handwriting_pb2
from tests.conftest import begin, key_metadata

pytestmark = pytest.mark.integration
REQUESTS = 2400
# gRPC itself answers RESOURCE_EXHAUSTED for a message over the server's limit,
# before any hwotp code runs; FAILED_PRECONDITION is "not enrolled"; PERMISSION_DENIED
# is a change to an enrolled user without the owner's proof.
ALLOWED = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED"}


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


class Garbage:
    """Malformed boxes, ids and requests, from a seeded generator."""

    def __init__(self, seed: int, genuine_png: bytes):
        self.rng = random.Random(seed)
        self.png = genuine_png
        self.jpeg = _encode(Image.open(io.BytesIO(genuine_png)).convert("L"), "JPEG", quality=85)
        self.bomb = _encode(Image.new("1", (30000, 30000), 0), "PNG")
        self.tall = _encode(Image.new("L", (5000, 20), 255), "PNG")
        self.tiny = _encode(Image.new("L", (2, 2), 0), "PNG")
        self.gif = _encode(Image.open(io.BytesIO(genuine_png)), "GIF")

    def image(self) -> bytes:
        r = self.rng
        kind = r.randrange(11)
        if kind == 0:
            return b""
        if kind == 1:
            return r.randbytes(r.randrange(1, 4000))
        if kind == 2:
            return self.png[: r.randrange(8, len(self.png))]
        if kind == 3:
            return self.jpeg[: r.randrange(2, len(self.jpeg))]
        if kind in (4, 5):
            data = bytearray(self.png if kind == 4 else self.jpeg)
            for _ in range(r.randrange(1, 20)):
                data[r.randrange(len(data))] = r.randrange(256)
            return bytes(data)
        if kind == 6:
            return self.bomb
        if kind == 7:
            return self.tall
        if kind == 8:
            return self.tiny
        if kind == 9:
            return self.gif
        return "not an image at all ✍".encode() * r.randrange(1, 100)

    def user_id(self) -> str:
        r = self.rng
        return r.choice(["", " ", "a b", "x" * r.randrange(129, 100_000), "ü-user", "\x00", "user\n", "fuzz-user"])

    def boxes(self, count: int | None = None) -> list:
        count = self.rng.choice([0, 1, 3, 11, 40]) if count is None else count
        return [handwriting_pb2.Handwriting(image=self.image()) for _ in range(count)]


def _call(method, request) -> str:
    try:
        answer = method(request, timeout=10)
    except grpc.RpcError as error:
        return error.code().name
    if isinstance(answer, gateway_pb2.SubmitChallengeResponse):
        assert answer.decision != gateway_pb2.ACCEPT, "a malformed submission was accepted"
        return "REJECT"
    return "OK"


def _raw_call(channel, method: str, payload: bytes, metadata) -> str:
    call = channel.unary_unary(f"/hwotp.v1.Gateway/{method}", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        call(payload, timeout=10, metadata=metadata)
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def test_fuzzing_gets_no_internal_errors_and_no_acceptance(stack, gateway, enrolled, writers):
    genuine = writers[0]
    garbage = Garbage(2026, genuine.write("0", random.Random(0))[0].image)
    codes: Counter = Counter()
    with grpc.insecure_channel(stack.gateway) as channel:
        for n in range(REQUESTS):
            kind = n % 8
            if kind == 0:  # a real challenge, malformed boxes of the right count
                challenge = begin(gateway, enrolled)
                request = gateway_pb2.SubmitChallengeRequest(
                    challenge_id=challenge.challenge_id, user_id=enrolled, boxes=garbage.boxes(len(challenge.digits)))
                codes[_call(gateway.SubmitChallenge, request)] += 1
            elif kind == 1:  # a real challenge, the wrong number of boxes
                challenge = begin(gateway, enrolled)
                boxes = genuine.write("0123456789"[: garbage.rng.choice([1, 3, 5, 7, 10])], garbage.rng)
                request = gateway_pb2.SubmitChallengeRequest(challenge_id=challenge.challenge_id, user_id=enrolled,
                                                             boxes=boxes)
                codes[_call(gateway.SubmitChallenge, request)] += 1
            elif kind == 2:
                request = gateway_pb2.SubmitChallengeRequest(
                    challenge_id=garbage.rng.choice(["", "x" * 5000, "../etc", "id with spaces"]),
                    user_id=garbage.user_id(), boxes=garbage.boxes())
                codes[_call(gateway.SubmitChallenge, request)] += 1
            elif kind == 3:
                samples = [handwriting_pb2.LabeledDigit(digit=garbage.rng.choice([0, 7, 10, 99, 2**31, 2**32 - 1]),
                                                        handwriting=handwriting_pb2.Handwriting(image=garbage.image()))
                           for _ in range(garbage.rng.randrange(0, 40))]
                codes[_call(gateway.Enroll, gateway_pb2.EnrollRequest(user_id=garbage.user_id(), samples=samples))] += 1
            elif kind == 4:  # a complete enrolment with one bad image in it
                request = genuine.enrolment("fuzz-enrol")
                request.samples[garbage.rng.randrange(len(request.samples))].handwriting.image = garbage.image()
                codes[_call(gateway.Enroll, request)] += 1
            elif kind == 5:
                request = gateway_pb2.BeginChallengeRequest(user_id=garbage.user_id(),
                                                            length=garbage.rng.choice([0, 1, 3, 11, 2**32 - 1]))
                codes[_call(gateway.BeginChallenge, request)] += 1
            elif kind == 6:  # bytes that are not a valid message: invalid UTF-8, truncation, garbage
                payload = garbage.rng.choice([b"\x0a\x03\xff\xfe\xfd", garbage.rng.randbytes(garbage.rng.randrange(1, 300)),
                                              b"\x12\x05\x0a\x03ab"])
                method = garbage.rng.choice(["Enroll", "BeginChallenge", "SubmitChallenge"])
                codes[_raw_call(channel, method, payload, key_metadata(stack))] += 1
            else:
                if n % 400 == 7:  # an oversized message now and then (9 MiB)
                    request = gateway_pb2.SubmitChallengeRequest(challenge_id="x", user_id=enrolled, boxes=[
                        handwriting_pb2.Handwriting(image=b"\x89PNG" + b"\x00" * (9 * 1024 * 1024))])
                else:
                    request = gateway_pb2.DeleteEnrollmentRequest(user_id=garbage.user_id())
                method = gateway.SubmitChallenge if isinstance(request, gateway_pb2.SubmitChallengeRequest) \
                    else gateway.DeleteEnrollment
                codes[_call(method, request)] += 1
    assert codes["INTERNAL"] == 0 and codes["UNKNOWN"] == 0, codes
    assert set(codes) <= ALLOWED | {"REJECT", "OK"}, codes
    assert codes["INVALID_ARGUMENT"] > REQUESTS / 2, codes
    for service in stack.services.values():
        with grpc.insecure_channel(service.address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING, service.name
