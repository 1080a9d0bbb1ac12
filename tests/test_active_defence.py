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
from hwotp.client import gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2
from tests.conftest import begin, submit

pytestmark = pytest.mark.integration
SECRET = "test-webhook-secret"
rng = np.random.default_rng(11)


class Receiver:
    """A relying party's alert endpoint on loopback; `status` is what it answers, once `hold`
    (when given) is set."""

    def __init__(self, status: int = 200, hold: threading.Event | None = None):
        self.requests: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                if hold is not None:
                    hold.wait()
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


def audit_events(stack, event: str) -> list[dict]:
    lines = (stack.workdir / "gateway.log").read_text().splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e.get("logger") == "hwotp.audit" and e["event"] == event]


@pytest.fixture
def defended(stacks):
    def make(receiver: Receiver, margin: str):
        # a huge margin (and no box floor, under which a rejection is never near) makes every
        # writer-check rejection a near miss: what is tested here is what follows one (the
        # margin itself is measured by training.evaluate)
        return stacks(HWOTP_NEAR_MISS_MARGIN=margin, HWOTP_BOX_FLOOR="-1000", HWOTP_ALERT_WEBHOOK_URL=receiver.url,
                      HWOTP_ALERT_WEBHOOK_SECRET=SECRET)

    return make


def enrol_then_fail_as_impostor(gateway, user: str, writers) -> None:
    """Enrol `user`, then answer a 6-digit challenge in another hand."""
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    challenge = begin(gateway, user)
    assert len(challenge.digits) == 6 and not challenge.stepped_up
    answer = submit(gateway, user, challenge, writers[1].write(challenge.digits, rng))
    assert answer.reason == gateway_pb2.WRITER_MISMATCH


def test_near_miss_steps_up_and_alerts_once_and_success_clears_it(defended, writers):
    receiver = Receiver()
    running = defended(receiver, margin="1000")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        enrol_then_fail_as_impostor(gateway, "nina", writers)
        longer = begin(gateway, "nina")
        assert len(longer.digits) == 8 and longer.stepped_up
        while not audit_events(running, "alert_delivered"):  # delivered: the notifier is done with it
            time.sleep(0.05)
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        alert = json.loads(body)
        assert (alert["event"], alert["caller"], alert["user_id"], alert["challenge_length"]) == \
            ("near_miss", "local", "nina", 6)
        assert not {"digits", "scores", "writer_scores"} & set(alert)
        assert submit(gateway, "nina", longer, writers[0].write(longer.digits, rng)).decision == gateway_pb2.ACCEPT
        after = begin(gateway, "nina")
        assert len(after.digits) == 6 and not after.stepped_up
    receiver.close()


def test_a_failing_receiver_does_not_hold_up_logins_and_is_retried(defended, writers):
    hold = threading.Event()
    receiver = Receiver(status=500, hold=hold)
    running = defended(receiver, margin="1000")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        # the answer comes while the receiver still holds the alert unanswered
        enrol_then_fail_as_impostor(gateway, "omar", writers)
        receiver.wait_for(1)
        assert len(receiver.requests) == 1
        hold.set()
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
        # no near miss was recorded, so no alert was ever queued
        assert audit_events(running, "near_miss") == [] and receiver.requests == []
    receiver.close()
