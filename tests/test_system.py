"""The whole system as real processes: redis-server and the four services on free loopback ports."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from gateway.budget import Budget
from gateway.downstream import GrpcRecognizer
from gateway.ports import Prepared
from hwotp.affinity import spread
from hwotp.boxes import from_batch
from hwotp.canvas import png_of
from hwotp.ink import png_of_strokes
from hwotp.models import STROKES
from hwotp.internal.v1 import recognizer_pb2, recognizer_pb2_grpc
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, SealError, new_key_entry
from hwotp.v1 import gateway_pb2, gateway_pb2_grpc, handwriting_pb2
from local.demo import DEMO_WRITER
from local.stack import PINNING_ORDER
from services.verifier import display
from training import strokes
from tests.conftest import begin, key_metadata, key_of, subject_of, submit
from tests.test_replay import reencoded

pytestmark = pytest.mark.integration
rng = np.random.default_rng(7)


def test_genuine_login_is_accepted(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    assert len(challenge.digits) == 6 and len(set(challenge.digits)) == 6
    assert challenge.time_limit_s == 60
    answer = submit(gateway, enrolled, challenge, writers[0].write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.ACCEPT, gateway_pb2.ACCEPTED)


def test_longer_challenge_on_request(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled, length=8)
    assert len(challenge.digits) == 8
    answer = submit(gateway, enrolled, challenge, writers[0].write(challenge.digits, rng))
    assert answer.decision == gateway_pb2.ACCEPT


def test_wrong_digits_are_rejected(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    shifted = challenge.digits[1:] + challenge.digits[0]  # right digits, wrong boxes
    answer = submit(gateway, enrolled, challenge, writers[0].write(shifted, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.WRONG_DIGITS)


def test_another_writer_is_rejected(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    answer = submit(gateway, enrolled, challenge, writers[1].write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.WRITER_MISMATCH)


def test_second_submission_is_rejected(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    boxes = writers[0].write(challenge.digits, rng)
    assert submit(gateway, enrolled, challenge, boxes).decision == gateway_pb2.ACCEPT
    again = submit(gateway, enrolled, challenge, boxes)
    assert (again.decision, again.reason) == (gateway_pb2.REJECT, gateway_pb2.ALREADY_USED)


def test_twenty_concurrent_submissions_give_one_decision(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    boxes = writers[0].write(challenge.digits, rng)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: submit(gateway, enrolled, challenge, boxes), range(20)))
    reasons = Counter(gateway_pb2.Reason.Name(a.reason) for a in answers)
    assert reasons == Counter({"ACCEPTED": 1, "ALREADY_USED": 19})


def test_hundred_trials_of_eight_concurrent_submissions(gateway, enrolled, writers):
    with ThreadPoolExecutor(8) as pool:
        for _ in range(100):
            challenge = begin(gateway, enrolled)
            boxes = writers[0].write(challenge.digits, rng)
            answers = list(pool.map(lambda _: submit(gateway, enrolled, challenge, boxes), range(8)))
            reasons = Counter(gateway_pb2.Reason.Name(a.reason) for a in answers)
            assert reasons["ALREADY_USED"] == 7 and sum(reasons.values()) == 8, reasons


def test_challenge_of_another_user_cannot_be_used(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    answer = submit(gateway, "mallory", challenge, writers[0].write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.UNKNOWN_CHALLENGE)
    # and the owner can still answer it
    assert submit(gateway, enrolled, challenge, writers[0].write(challenge.digits, rng)).decision == gateway_pb2.ACCEPT


def test_unknown_user_gets_no_challenge(gateway):
    with pytest.raises(grpc.RpcError) as error:
        begin(gateway, "nobody")
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not enrolled" in error.value.details()


def test_templates_of_another_model_version_need_reenrolment(gateway, stack, writers):
    user = "bob-old-model"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    client = stack.redis.client()
    # as if the verifier had been upgraded since this user enrolled
    client.hset(key_of(subject_of(stack, user), "tpl"), "model_version", "verifier-old")
    with pytest.raises(grpc.RpcError) as error:
        begin(gateway, user)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "re-enrolment required" in error.value.details()


def test_templates_in_redis_are_sealed(gateway, stack, enrolled):
    client = stack.redis.client()
    user = subject_of(stack, enrolled)
    stored = client.hgetall(key_of(user, "tpl"))
    assert set(stored) == {b"model_version", b"dim", b"vectors", b"samples", b"depth"}
    sealer = Sealer.from_settings(stack.env["HWOTP_TEMPLATE_KEYS"], "")
    assert sealer.open(stored[b"depth"], f"dpt:{user}".encode()) == bytes([3])  # three samples of every digit
    vectors = np.frombuffer(sealer.open(stored[b"vectors"], f"tpl:{user}".encode()), dtype="<f4").reshape(10, 128)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)  # directions of mean embeddings
    assert vectors.tobytes() not in stored[b"vectors"]
    with pytest.raises(SealError):
        Sealer.from_settings(new_key_entry("local"), "").open(stored[b"vectors"], f"tpl:{user}".encode())
    with pytest.raises(SealError):
        sealer.open(stored[b"vectors"], b"tpl:someone-else")
    # the enrolment's fingerprints: one sealed entry of one per sample
    (entry,) = [sealer.open(blob, f"fpe:{user}".encode()) for blob in client.lrange(key_of(user, "fpe"), 0, -1)]
    assert len(entry) == 1024 * int(stored[b"samples"])


def test_strokes_are_kept_sealed_with_the_enrolment_and_deletion_removes_everything(gateway, stack, writers,
                                                                                     stroke_writers):
    request = writers[0].enrolment("kim")
    # a client that sends both: the strokes are what the server renders, and they are kept
    request.samples[0].handwriting.strokes.extend(stroke_writers[0].enrolment("x").samples[0].handwriting.strokes)
    request.samples[0].digit = stroke_writers[0].enrolment("x").samples[0].digit
    stroke = request.samples[0].handwriting.strokes[0]
    gateway.Enroll(request, timeout=30)
    client = stack.redis.client()
    user = subject_of(stack, "kim")
    sealer = Sealer.from_settings(stack.env["HWOTP_TEMPLATE_KEYS"], "")
    kept = [sealer.open(blob, f"trj:{user}".encode()) for blob in client.lrange(key_of(user, "trj"), 0, -1)]
    assert len(kept) == len(request.samples) and all(entry[1:] == b"" for entry in kept[1:])
    assert kept[0][0] == request.samples[0].digit
    assert handwriting_pb2.Handwriting.FromString(kept[0][1:]).strokes[0] == stroke
    challenge = begin(gateway, "kim")
    accepted = submit(gateway, "kim", challenge, writers[0].write(challenge.digits, rng))
    proof = gateway_pb2.OwnerProof(owner_token=accepted.owner_token)
    assert gateway.DeleteEnrollment(gateway_pb2.DeleteEnrollmentRequest(user_id="kim", proof=proof), timeout=5).deleted
    assert not [key for key in client.scan_iter(key_of(user, "*")) if b":chm:" not in key]  # markers expire
    with pytest.raises(grpc.RpcError, match="not enrolled"):
        begin(gateway, "kim")


def test_display_templates_only_when_enabled(stacks, gateway, enrolled, writers):
    assert not begin(gateway, enrolled).display_templates  # off by default
    running = stacks(HWOTP_DISPLAY_TEMPLATES="true")
    showing = stacks.stub(running)
    request = writers[0].enrolment("mia")
    threes = [i for i, s in enumerate(request.samples) if s.digit == 3]
    request.display_samples.append(threes[1])  # the user picks their second 3
    showing.Enroll(request, timeout=30)
    for _ in range(5):
        challenge = begin(showing, "mia")
        assert len(challenge.display_templates) == len(challenge.digits)
        for digit, image in zip(challenge.digits, challenge.display_templates):
            own = [s.handwriting.image for s in request.samples if s.digit == int(digit)]
            assert image not in own  # never the enrolled sample itself ...
            assert image in [display.render(sample) for sample in own]  # ... but the user's own writing of it
            if digit == "3":
                assert image == display.render(request.samples[threes[1]].handwriting.image)
    bad = writers[0].enrolment("mia")
    bad.display_samples.extend(threes[:2])  # two templates of one digit
    with pytest.raises(grpc.RpcError) as error:
        showing.Enroll(bad, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_image_challenges_only_when_asked(gateway, stack, enrolled, writers):
    plain = begin(gateway, enrolled)
    assert plain.digits and not plain.digits_image
    pictured = gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=enrolled, as_image=True), timeout=10)
    assert pictured.digits == ""
    image = Image.open(io.BytesIO(pictured.digits_image))
    assert image.format == "PNG" and image.size == (64 * 6, 96)
    # the digits exist only server-side; a user who reads the image answers as usual
    record = stack.redis.client().get(
        key_of(subject_of(stack, enrolled), f"ch:{pictured.challenge_id}"))
    digits = json.loads(record)["digits"]
    again = gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=enrolled, as_image=True), timeout=10)
    assert again.digits_image != pictured.digits_image
    answer = submit(gateway, enrolled, pictured, writers[0].write(digits, rng))
    assert answer.decision == gateway_pb2.ACCEPT


def test_secret_repositioning_accepts_only_the_secret_order(gateway, stack, writers):
    from hwotp.reposition import apply

    gateway.Enroll(writers[0].enrolment("lena"), timeout=30)

    tokens = []  # the owner tokens of accepted logins: proof for changing the scheme

    def login(order) -> int:
        challenge = begin(gateway, "lena")
        answer = submit(gateway, "lena", challenge, writers[0].write(order(challenge.digits), rng))
        tokens.append(answer.owner_token)
        return answer.reason

    def as_shown(digits):
        return digits

    def set_scheme(scheme):
        proof = gateway_pb2.OwnerProof(owner_token=tokens[-1])
        return gateway.SetRepositioning(gateway_pb2.SetRepositioningRequest(user_id="lena", scheme=scheme, proof=proof),
                                        timeout=5)

    assert login(as_shown) == gateway_pb2.ACCEPTED

    assert set_scheme("reverse").active
    assert login(as_shown) == gateway_pb2.WRONG_DIGITS
    assert login(lambda d: apply("reverse", d)) == gateway_pb2.ACCEPTED
    assert set_scheme("rotate:2").active  # the scheme can be changed
    assert login(lambda d: apply("reverse", d)) == gateway_pb2.WRONG_DIGITS
    assert login(lambda d: apply("rotate:2", d)) == gateway_pb2.ACCEPTED
    stored = stack.redis.client().get(key_of(subject_of(stack, "lena"), "rep"))
    assert stored and b"rotate" not in stored  # sealed like the templates
    assert not set_scheme("").active
    assert login(as_shown) == gateway_pb2.ACCEPTED
    with pytest.raises(grpc.RpcError) as error:
        set_scheme("backwards")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_enrolment_refuses_a_mislabelled_sample_and_keeps_nothing(gateway, writers):
    request = writers[0].enrolment("carol")
    ones = [s for s in request.samples if s.digit == 1]
    sevens = [s for s in request.samples if s.digit == 7]
    ones[0].handwriting.CopyFrom(sevens[0].handwriting)  # a 7 labelled as 1
    with pytest.raises(grpc.RpcError) as error:
        gateway.Enroll(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "labelled 1" in error.value.details() and "reads as 7" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        begin(gateway, "carol")
    assert "not enrolled" in error.value.details()


def _png_box() -> handwriting_pb2.Handwriting:
    return handwriting_pb2.Handwriting(image=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)


@pytest.mark.parametrize("call,message", [
    (lambda g, u, w: g.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=""), timeout=5), "user_id is missing"),
    (lambda g, u, w: g.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=u, length=3), timeout=5), "outside 4-10"),
    (lambda g, u, w: g.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(user_id=u, boxes=w[0].write("1234", rng)), timeout=5), "challenge_id is missing"),
    (lambda g, u, w: g.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(challenge_id="x", user_id=u, boxes=[_png_box()] * 6), timeout=5), "box 0"),
    (lambda g, u, w: g.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(challenge_id="x", user_id=u, boxes=[handwriting_pb2.Handwriting()] * 6), timeout=5), "box 0: neither strokes nor an image"),
    (lambda g, u, w: g.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(challenge_id="x", user_id=u, boxes=w[0].write("0123456789", rng) * 2), timeout=5), "20 boxes"),
    (lambda g, u, w: g.Enroll(gateway_pb2.EnrollRequest(user_id=u, samples=w[0].enrolment(u).samples[:20]), timeout=5), "too few of"),
    (lambda g, u, w: g.Enroll(gateway_pb2.EnrollRequest(user_id=u, samples=[handwriting_pb2.LabeledDigit(digit=12, handwriting=_png_box())]), timeout=5), "digit 12"),
    (lambda g, u, w: g.Enroll(gateway_pb2.EnrollRequest(user_id="a b", samples=[]), timeout=5), "printable"),
])
def test_bad_input_is_invalid_argument_with_a_reason(gateway, enrolled, writers, call, message):
    with pytest.raises(grpc.RpcError) as error:
        call(gateway, enrolled, writers)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


def test_wrong_number_of_boxes_is_invalid_argument(gateway, enrolled, writers):
    challenge = begin(gateway, enrolled)
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, enrolled, challenge, writers[0].write(challenge.digits[:4], rng))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "4 boxes for a challenge of 6 boxes" in error.value.details()


def test_audit_trail_has_events_with_scores_but_no_digits_or_keys(gateway, stack, enrolled, writers):
    challenge = begin(gateway, enrolled)
    submit(gateway, enrolled, challenge, writers[1].write(challenge.digits, rng))
    log = (stack.workdir / "gateway.log").read_text()
    events = [json.loads(line) for line in log.splitlines() if '"logger": "hwotp.audit"' in line]
    kinds = {e["event"] for e in events}
    assert {"enrolment", "challenge", "decision"} <= kinds
    decision = [e for e in events if e["event"] == "decision" and e.get("reason") == "WRITER_MISMATCH"][-1]
    assert decision["user"] == enrolled and len(decision["writer_scores"]) == 6
    assert len(decision["digit_correct"]) == 6 and all(isinstance(v, bool) for v in decision["digit_correct"])
    for event in events:
        assert not {"digits", "image", "images", "api_key", "key"} & set(event), event
    assert stack.api_key not in log
    numeric = {"at", "time", "writer_scores", "recognition_confidence"}  # numbers, not the challenge
    words = json.dumps([{k: v for k, v in e.items() if k not in numeric} for e in events])
    assert challenge.digits not in words


def test_responses_carry_no_scores():
    fields = {f.name for f in gateway_pb2.SubmitChallengeResponse.DESCRIPTOR.fields}
    assert fields == {"decision", "reason", "owner_token"}


def test_every_service_has_health_and_reflection(stack):
    expected = {"recognizer": "hwotp.internal.v1.RecognizerService", "verifier": "hwotp.internal.v1.VerifierService",
                "challenge": "hwotp.internal.v1.ChallengeService", "gateway": "hwotp.v1.Gateway"}
    for name, service in expected.items():
        with grpc.insecure_channel(stack.services[name].address) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            names = {s.name for reply in replies for s in reply.list_services_response.service}
            assert service in names and "grpc.health.v1.Health" in names


def test_the_recognizer_service_reads_strokes_by_their_paths_too(stack, bundle, stroke_samples):
    """Held-out boxes whose picture alone reads otherwise than picture and path together: sent
    with their paths, the service reads them as the two together; sent without, as the picture."""
    held_out = strokes.samples_of(stroke_samples, "test")
    rendered, _ = strokes.digit_set(held_out)
    paths = strokes.paths_of(held_out)
    by_image = bundle.recognizer(rendered.images[:, None]).argmax(axis=1)
    by_both = bundle.digit_logits(rendered.images[:, None], paths).argmax(axis=1)
    differ = np.flatnonzero(by_image != by_both)[:8]
    assert len(differ) > 0
    fields, fingerprints = rendered.images[differ, None], np.zeros((len(differ), FINGERPRINT_BYTES), np.int8)
    with grpc.insecure_channel(stack.services["recognizer"].address) as channel:
        recognizer = recognizer_pb2_grpc.RecognizerServiceStub(channel)
        for sent, expected in ((paths[differ], by_both[differ]), (None, by_image[differ])):
            request = recognizer_pb2.RecognizeRequest(boxes=from_batch(fields, fingerprints, sent))
            assert [r.digit for r in recognizer.Recognize(request, timeout=10).results] == expected.tolist()
        # and the gateway sends them: boxes that came as strokes carry their paths
        prepared = Prepared(fields, fingerprints, STROKES, paths[differ])
        readings = GrpcRecognizer(recognizer).recognize(prepared, Budget(10))
        assert [r.digit for r in readings] == by_both[differ].tolist()


def test_each_service_runs_on_its_own_cpus(stack):
    dealt = spread(PINNING_ORDER, sorted(os.sched_getaffinity(0)))
    for name, service in stack.services.items():
        threads = os.listdir(f"/proc/{service.process.pid}/task")
        assert len(threads) > 2  # gRPC's threads, started after the pinning, are among them
        held = set()
        for thread in threads:
            try:
                held.add(frozenset(os.sched_getaffinity(int(thread))))
            except ProcessLookupError:
                pass  # ended meanwhile
        assert held == {dealt[name]}, name


def test_metrics_count_decisions_and_rpcs(gateway, stack, enrolled, writers):
    challenge = begin(gateway, enrolled)
    submit(gateway, enrolled, challenge, writers[0].write(challenge.digits, rng))
    text = urllib.request.urlopen(f"http://{stack.services['gateway'].metrics_address}/metrics", timeout=5).read().decode()
    assert 'hwotp_decisions_total{decision="ACCEPT",reason="ACCEPTED"}' in text
    assert 'hwotp_rpc_duration_seconds_count{code="OK",method="SubmitChallenge",service="gateway"}' in text
    text = urllib.request.urlopen(f"http://{stack.services['recognizer'].metrics_address}/metrics", timeout=5).read().decode()
    assert 'hwotp_inference_batch_size_bucket{le="6.0",model="recognizer"}' in text


# --- a stack of our own for each test that changes it -------------------------------------------


def test_replayed_boxes_are_rejected(stacks, writers, test_digits):
    """Every box of an accepted login, resubmitted as it was or re-encoded as JPEG and
    shifted by a pixel, in a fresh challenge, is caught. The other boxes of each
    replaying answer are fresh: other writers' digits, each used once."""
    others = test_digits.images[test_digits.writers != DEMO_WRITER]
    fresh_boxes = (handwriting_pb2.Handwriting(image=png_of(field)) for field in others[::7])
    running = stacks(HWOTP_REPLAY_THRESHOLD="0.98")
    gateway = stacks.stub(running)
    enrolled = "henry"
    gateway.Enroll(writers[0].enrolment(enrolled), timeout=30)
    challenge = begin(gateway, enrolled)
    boxes = writers[0].write(challenge.digits)  # reproducible boxes: the replays below are deterministic
    assert submit(gateway, enrolled, challenge, boxes).decision == gateway_pb2.ACCEPT
    control = begin(gateway, enrolled)  # fresh boxes alone are no replay
    assert submit(gateway, enrolled, control, [next(fresh_boxes) for _ in control.digits]).reason != gateway_pb2.REPLAY
    for index, box in enumerate(boxes):
        for image in (box.image, reencoded(box.image, (1, 0), 85), reencoded(box.image, (0, -1), 70)):
            fresh = begin(gateway, enrolled)
            answer = [next(fresh_boxes) for _ in fresh.digits]
            # the captured box, in whichever position of the new challenge holds its digit
            if challenge.digits[index] in fresh.digits:
                answer[fresh.digits.index(challenge.digits[index])] = handwriting_pb2.Handwriting(image=image)
            else:
                answer[0] = handwriting_pb2.Handwriting(image=image)
            result = submit(gateway, enrolled, fresh, answer)
            assert (result.decision, result.reason) == (gateway_pb2.REJECT, gateway_pb2.REPLAY), (index, fresh.digits)


def test_enrolment_images_kept_sealed_only_when_asked(stacks, stack, writers):
    running = stacks(HWOTP_STORE_ENROLMENT_IMAGES="true")
    request = writers[0].enrolment("jo")
    stacks.stub(running).Enroll(request, timeout=30)
    user = subject_of(running, "jo")
    kept = running.redis.client().lrange(key_of(user, "img"), 0, -1)
    sealer = Sealer.from_settings(running.env["HWOTP_TEMPLATE_KEYS"], "")
    opened = [sealer.open(blob, f"img:{user}".encode()) for blob in kept]
    assert opened == [bytes([s.digit]) + s.handwriting.image for s in request.samples]
    assert not any(s.handwriting.image[:64] in blob for s, blob in zip(request.samples, kept))
    # after a model upgrade (simulated: the templates claim an old model) the user is
    # re-enrolled from the kept images, without writing again
    client = running.redis.client()
    client.hset(key_of(user, "tpl"), "model_version", "verifier-old")
    with pytest.raises(grpc.RpcError, match="re-enrolment required"):
        begin(stacks.stub(running), "jo")
    result = subprocess.run([sys.executable, "-m", "services.verifier.reenrol", "local", "jo", "nobody"], env=running.env,
                            capture_output=True, text=True, timeout=120)
    assert "jo: re-enrolled from 30 kept images" in result.stdout and "nobody: no kept" in result.stdout
    challenge = begin(stacks.stub(running), "jo")
    answer = submit(stacks.stub(running), "jo", challenge, writers[0].write(challenge.digits, rng))
    assert answer.decision == gateway_pb2.ACCEPT
    # by default nothing of the kind is stored
    default = stack.redis.client()
    assert not list(default.scan_iter("hwotp:*:img"))


def test_a_strokes_enrolment_is_reenrolled_with_online_templates_of_the_model_now_served(stacks, stroke_writers):
    running = stacks(HWOTP_STORE_ENROLMENT_IMAGES="true")
    genuine, _ = stroke_writers
    stacks.stub(running).Enroll(genuine.enrolment("kim"), timeout=30)
    client, templates = running.redis.client(), key_of(subject_of(running, "kim"), "tpl")
    served = client.hget(templates, "online_version")
    # after an upgrade of both models (simulated: the templates claim old ones)
    client.hset(templates, mapping={"model_version": "verifier-old", "online_version": "online-verifier-old"})
    result = subprocess.run([sys.executable, "-m", "services.verifier.reenrol", "local", "kim"], env=running.env,
                            capture_output=True, text=True, timeout=120)
    assert "kim: re-enrolled from 30 kept images" in result.stdout, result.stderr
    assert client.hget(templates, "online_version") == served and client.hexists(templates, "online")
    challenge = begin(stacks.stub(running), "kim")
    assert submit(stacks.stub(running), "kim", challenge, genuine.write(challenge.digits, rng)).decision == \
        gateway_pb2.ACCEPT
    log = (running.workdir / "gateway.log").read_text()
    decisions = [json.loads(line) for line in log.splitlines() if '"event": "decision"' in line]
    assert [e["modalities"] for e in decisions] == ["image+online"]


def test_late_answer_is_expired(stacks, writers):
    running = stacks(HWOTP_CHALLENGE_TIME_LIMIT_S="1")
    gateway = stacks.stub(running)
    gateway.Enroll(writers[0].enrolment("dave"), timeout=30)
    challenge = begin(gateway, "dave")
    assert challenge.time_limit_s == 1
    record = running.redis.client()
    while record.exists(key_of(subject_of(running, "dave"), f"ch:{challenge.challenge_id}")):
        time.sleep(0.05)  # the time limit has to pass: this is what is tested
    answer = submit(gateway, "dave", challenge, writers[0].write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.EXPIRED)


def test_dead_verifier_or_redis_fails_closed(stacks, writers):
    running = stacks()
    gateway = stacks.stub(running)
    gateway.Enroll(writers[0].enrolment("erin"), timeout=30)
    challenge = begin(gateway, "erin")
    running.services["verifier"].process.kill()
    running.services["verifier"].process.wait()
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, "erin", challenge, writers[0].write(challenge.digits, rng))
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.UNAVAILABLE, "verifier is unavailable")
    running.redis.kill()
    with pytest.raises(grpc.RpcError) as error:
        begin(gateway, "erin")
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_slow_verifier_answers_within_the_budget_and_recovers(stacks, writers):
    running = stacks(HWOTP_GATEWAY_BUDGET_MS="1500")
    gateway = stacks.stub(running)
    gateway.Enroll(writers[0].enrolment("ivy"), timeout=30)
    challenge = begin(gateway, "ivy")
    verifier = running.services["verifier"].process
    verifier.send_signal(signal.SIGSTOP)  # alive but answering nothing: a slow service
    try:
        with pytest.raises(grpc.RpcError) as error:
            submit(gateway, "ivy", challenge, writers[0].write(challenge.digits, rng), timeout=30)
        # the gateway's budget ran out, not the caller's 30 s (gRPC would say "Deadline Exceeded")
        assert (error.value.code(), error.value.details()) == (grpc.StatusCode.DEADLINE_EXCEEDED,
                                                               "verifier did not answer in time")
    finally:
        verifier.send_signal(signal.SIGCONT)
    challenge = begin(gateway, "ivy")  # no restart needed
    assert submit(gateway, "ivy", challenge, writers[0].write(challenge.digits, rng)).decision == gateway_pb2.ACCEPT


def test_sigterm_drains_in_flight_calls(stacks, writers):
    running = stacks()
    gateway = stacks.stub(running)
    gateway.Enroll(writers[0].enrolment("frank"), timeout=30)
    challenges = [begin(gateway, "frank") for _ in range(5)]
    verifier = running.services["verifier"].process
    verifier.send_signal(signal.SIGSTOP)  # hold the calls in flight inside the gateway
    try:
        calls = [gateway.SubmitChallenge.future(gateway_pb2.SubmitChallengeRequest(
            challenge_id=c.challenge_id, user_id="frank", boxes=writers[0].write(c.digits, rng)), timeout=15)
            for c in challenges]
        markers = [key_of(subject_of(running, "frank"), f"chm:{c.challenge_id}") for c in challenges]
        store = running.redis.client()
        while [store.get(m) for m in markers] != [b"used"] * 5:  # every call is in the gateway, past its claim
            time.sleep(0.02)
        running.services["gateway"].process.send_signal(signal.SIGTERM)
        with grpc.insecure_channel(running.gateway) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 3
            status = None
            while time.monotonic() < deadline:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                except grpc.RpcError:
                    status = "gone"
                if status != health_pb2.HealthCheckResponse.SERVING:
                    break
            assert status != health_pb2.HealthCheckResponse.SERVING
    finally:
        verifier.send_signal(signal.SIGCONT)
    assert [c.result().decision for c in calls] == [gateway_pb2.ACCEPT] * 5
    assert running.services["gateway"].process.wait(timeout=10) == 0


def test_redis_kill_during_logins_loses_nothing_and_accepts_nobody(stacks, writers):
    """kill -9 of Redis during a stream of logins: no acceptance while it is down, logins
    succeed again once it is back (no restart of any service), every enrolment survives (AOF)."""
    running = stacks()
    gateway = stacks.stub(running)
    users = [f"user-{i}" for i in range(5)]
    for user in users:
        gateway.Enroll(writers[0].enrolment(user), timeout=30)
    running.redis.persist()  # the enrolments on disk now, not within appendfsync's second
    events, stop = [], threading.Event()

    def stream():
        n = 0
        while not stop.is_set():
            user = users[n % len(users)]
            n += 1
            started = time.monotonic()
            try:
                challenge = begin(gateway, user)
                answer = submit(gateway, user, challenge, writers[0].write(challenge.digits, rng))
                events.append((started, time.monotonic(), gateway_pb2.Decision.Name(answer.decision)))
            except grpc.RpcError as error:
                events.append((started, time.monotonic(), error.code().name))
                time.sleep(0.05)

    def wait_until(condition) -> None:
        deadline = time.monotonic() + 30  # a guard against a hang, not a bound on how fast
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        wait_until(lambda: any(e[2] == "ACCEPT" for e in events))  # it works
        killed = time.monotonic()
        running.redis.kill()
        wait_until(lambda: len([e for e in events if e[0] > killed]) >= 3)  # logins tried while it is down
        back = time.monotonic()  # from here Redis may be up again
        running.redis.start()  # same port, same AOF directory
        wait_until(lambda: any(e[0] > back and e[2] == "ACCEPT" for e in events))
    finally:
        stop.set()
        worker.join(timeout=30)
    assert any(e[1] < killed and e[2] == "ACCEPT" for e in events)  # it was working before
    down = [e for e in events if e[0] > killed and e[1] < back]
    # every login made while Redis was down failed with an error status: none accepted
    assert down and all(e[2] in ("UNAVAILABLE", "DEADLINE_EXCEEDED") for e in down), down
    assert any(e[0] > back and e[2] == "ACCEPT" for e in events)  # back without restarting a service
    for user in users:  # every enrolment survived the crash
        assert begin(gateway, user).challenge_id


@pytest.mark.parametrize("payload", [b"\x0a\x02\xff\xfe", b"\xff\xff\xff", b"\x1a\x05\x0a\x03ab"])
def test_unparsable_request_is_invalid_argument(stack, payload):
    """Invalid UTF-8 in user_id, garbage, a truncated box: the caller's fault, never INTERNAL."""
    with grpc.insecure_channel(stack.gateway) as channel:
        for method in ("BeginChallenge", "SubmitChallenge", "Enroll"):
            call = channel.unary_unary(f"/hwotp.v1.Gateway/{method}", request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
            with pytest.raises(grpc.RpcError) as error:
                call(payload, timeout=5, metadata=key_metadata(stack))
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.value.details())


@pytest.mark.parametrize("metadata", [(), (("x-api-key", "wrong"),), (("x-api-key", ""),), (("authorization", "Bearer x"),)])
def test_callers_without_a_registered_key_are_unauthenticated(stack, metadata):
    with grpc.insecure_channel(stack.gateway) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        for call, request in ((stub.BeginChallenge, gateway_pb2.BeginChallengeRequest(user_id="alice@example.com")),
                              (stub.Enroll, gateway_pb2.EnrollRequest(user_id="x")),
                              (stub.SubmitChallenge, gateway_pb2.SubmitChallengeRequest(challenge_id="a", user_id="b")),
                              (stub.DeleteEnrollment, gateway_pb2.DeleteEnrollmentRequest(user_id="alice@example.com"))):
            with pytest.raises(grpc.RpcError) as error:
                call(request, timeout=5, metadata=metadata)
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # probes need no key
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


# --- touchscreen ink: strokes only, no image ------------------------------------------------------

def test_a_login_written_as_strokes_only(gateway, stroke_writers):
    genuine, impostor = stroke_writers
    request = genuine.enrolment("sam-strokes")
    assert all(not s.handwriting.image and s.handwriting.strokes for s in request.samples)
    gateway.Enroll(request, timeout=30)
    challenge = begin(gateway, "sam-strokes")
    answer = submit(gateway, "sam-strokes", challenge, genuine.write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.ACCEPT, gateway_pb2.ACCEPTED)
    challenge = begin(gateway, "sam-strokes")
    answer = submit(gateway, "sam-strokes", challenge, impostor.write(challenge.digits, rng))
    assert (answer.decision, answer.reason) == (gateway_pb2.REJECT, gateway_pb2.WRITER_MISMATCH)


def test_strokes_are_judged_by_their_path_only_for_users_enrolled_with_strokes(gateway, stack, stroke_writers):
    genuine, _ = stroke_writers
    gateway.Enroll(genuine.enrolment("pat-strokes"), timeout=30)
    # the same writer enrolled from pictures of the same ink: no paths, no online templates
    pictured = genuine.enrolment("pat-pictures")
    for sample in pictured.samples:
        strokes = [np.array([(p.x, p.y) for p in s.points]) for s in sample.handwriting.strokes]
        sample.handwriting.CopyFrom(handwriting_pb2.Handwriting(image=png_of_strokes(strokes)))
    gateway.Enroll(pictured, timeout=30)
    stored = stack.redis.client()
    assert stored.hexists(key_of(subject_of(stack, 'pat-strokes'), 'tpl'), 'online')
    assert not stored.hexists(key_of(subject_of(stack, 'pat-pictures'), 'tpl'), 'online')
    for user in ("pat-strokes", "pat-pictures"):
        challenge = begin(gateway, user)
        answer = submit(gateway, user, challenge, genuine.write(challenge.digits, rng))
        assert not {"modalities", "scores"} & {f.name for f, _ in answer.ListFields()}
    log = (stack.workdir / "gateway.log").read_text()
    decisions = [json.loads(line) for line in log.splitlines() if '"event": "decision"' in line]
    judged = {e["user"]: e["modalities"] for e in decisions if e["user"] in ("pat-strokes", "pat-pictures")}
    assert judged == {"pat-strokes": "image+online", "pat-pictures": "image"}
    text = urllib.request.urlopen(f"http://{stack.services['verifier'].metrics_address}/metrics", timeout=5).read().decode()
    assert 'hwotp_writer_checks_total{modalities="image+online"}' in text
    assert 'hwotp_inference_batch_size_bucket{le="6.0",model="online_verifier"}' in text


@pytest.mark.parametrize("spoil, rule", [
    (lambda box: box.strokes[0].points.append(handwriting_pb2.Point(x=float("nan"), y=1, t_ms=1e5)),
     "not a finite number"),
    (lambda box: box.strokes[0].points.append(handwriting_pb2.Point(x=1, y=1, t_ms=0)), "t_ms must not decrease"),
    (lambda box: [p.__setattr__("x", 5.0) or p.__setattr__("y", 5.0) for s in box.strokes for p in s.points],
     "no ink"),
    (lambda box: box.strokes.add(), "stroke"),
    (lambda box: box.strokes[0].points[0].__setattr__("altitude", 2.0), "altitude in [0, pi/2]"),
])
def test_malformed_strokes_are_refused_naming_the_box_and_the_rule(gateway, stroke_writers, spoil, rule):
    user = "sam-" + rule.replace(" ", "-")
    gateway.Enroll(stroke_writers[0].enrolment(user), timeout=30)
    challenge = begin(gateway, user)
    boxes = stroke_writers[0].write(challenge.digits, rng)
    spoil(boxes[2])
    with pytest.raises(grpc.RpcError) as error:
        submit(gateway, user, challenge, boxes)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "box 2" in error.value.details() and rule in error.value.details()
    # nothing was used up: the challenge still takes a good answer
    assert submit(gateway, user, challenge, stroke_writers[0].write(challenge.digits, rng)).decision == \
        gateway_pb2.ACCEPT
