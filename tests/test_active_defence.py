"""Active defence against real processes: a near miss makes the next challenge longer and sends
exactly one signed webhook to a local receiver; a failing receiver does not slow the login path;
a success at the longer length ends step-up."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gateway.alerts import SIGNATURE_HEADER
from hwotp.v1 import gateway_pb2
from hwotp.client import gateway_channel, gateway_stub
from tests.conftest import begin, start_stack, submit

pytestmark = pytest.mark.integration
SECRET = "test-webhook-secret"
rng = np.random.default_rng(11)


class Receiver:
    """A relying party's alert endpoint on loopback; `status` is what it answers."""

    def __init__(self, status: int = 200, delay_s: float = 0.0):
        self.requests: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                time.sleep(delay_s)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self):
        self.server.shutdown()


@pytest.fixture
def defended(tmp_path):
    made = []

    def make(receiver: Receiver, margin: str):
        # a huge margin makes every writer-check rejection a near miss: what is tested
        # here is what follows one (the margin itself is measured by training.evaluate)
        made.append(start_stack(tmp_path / str(len(made)), HWOTP_NEAR_MISS_MARGIN=margin,
                                HWOTP_ALERT_WEBHOOK_URL=receiver.url, HWOTP_ALERT_WEBHOOK_SECRET=SECRET))
        return made[-1]

    yield make
    for running in made:
        running.stop()


def enrol_then_fail_as_impostor(gateway, user: str, writers) -> float:
    """Enrol `user`, then answer a 6-digit challenge in another hand; returns how long that answer took."""
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    challenge = begin(gateway, user)
    assert len(challenge.digits) == 6 and not challenge.stepped_up
    boxes = writers[1].write(challenge.digits, rng)
    started = time.monotonic()
    answer = submit(gateway, user, challenge, boxes)
    assert answer.reason == gateway_pb2.WRITER_MISMATCH
    return time.monotonic() - started


def test_near_miss_steps_up_and_alerts_once_and_success_clears_it(defended, writers):
    receiver = Receiver()
    running = defended(receiver, margin="1000")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        enrol_then_fail_as_impostor(gateway, "nina", writers)
        longer = begin(gateway, "nina")
        assert len(longer.digits) == 8 and longer.stepped_up
        receiver.wait_for(1)
        time.sleep(0.5)  # nothing more arrives
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        alert = json.loads(body)
        assert alert["event"] == "near_miss" and alert["user_id"] == "nina" and alert["challenge_length"] == 6
        assert not {"digits", "scores", "writer_scores"} & set(alert)
        assert submit(gateway, "nina", longer, writers[0].write(longer.digits, rng)).decision == gateway_pb2.ACCEPT
        after = begin(gateway, "nina")
        assert len(after.digits) == 6 and not after.stepped_up
    receiver.close()


def test_failing_receiver_does_not_slow_logins_and_is_retried(defended, writers):
    receiver = Receiver(status=500, delay_s=1.0)
    running = defended(receiver, margin="1000")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        # the receiver takes 1 s per attempt, and is retried: the answer must not wait for it
        assert enrol_then_fail_as_impostor(gateway, "omar", writers) < 0.8
        receiver.wait_for(2)
        assert len(receiver.requests) >= 2  # retried with backoff
    receiver.close()


def test_no_near_miss_no_step_up(defended, writers):
    receiver = Receiver()
    running = defended(receiver, margin="0")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        enrol_then_fail_as_impostor(gateway, "pia", writers)
        again = begin(gateway, "pia")
        assert len(again.digits) == 6 and not again.stepped_up
        time.sleep(0.5)
        assert receiver.requests == []
    receiver.close()
