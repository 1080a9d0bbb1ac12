"""Throttling and lockout (NIST SP 800-63B bars for biometric factors), counted atomically in a
real Redis and across gateway replicas."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from hwotp.client import gateway_channel, gateway_stub, retry_after_s
from hwotp.outcomes import ClaimStatus
from hwotp.v1 import gateway_pb2
from services.challenge.store import ChallengeStore, Limits, Refused
from tests.conftest import begin, submit

pytestmark = pytest.mark.integration

rng = random.Random(5)


@pytest.fixture
def store(redis_client):
    return lambda limits: ChallengeStore(redis_client, limits)


def fail(store: ChallengeStore, user: str) -> None:
    issued = store.create(user, 6, 60)
    assert not isinstance(issued, Refused), issued
    assert store.claim(issued.challenge_id, user).status is ClaimStatus.CLAIMED  # counted until a success


def test_throttle_after_five_failures_growing_delay(store):
    challenges = store(Limits(per_user=1000))
    for _ in range(5):
        fail(challenges, "u")
    refused = challenges.create("u", 6, 60)
    assert isinstance(refused, Refused) and refused.reason == "throttled"
    assert 29_000 <= refused.retry_after_ms <= 30_000
    assert challenges.lockout("u").failures == 5 and not challenges.lockout("u").disabled


class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def test_delay_grows_and_fifty_failures_disable_until_reset(redis_client):
    clock = Clock()
    challenges = ChallengeStore(redis_client, Limits(delay_ms=2000, per_user=1000), clock)
    for n in range(50):
        if n >= 5:  # throttled after 5 failures, for 2 s more with each further one
            refused = challenges.create("u", 6, 60)
            assert (refused.reason, refused.retry_after_ms) == ("throttled", 2000 * (n - 4))
            clock.now += refused.retry_after_ms
        issued = challenges.create("u", 6, 60)
        assert challenges.claim(issued.challenge_id, "u").status is ClaimStatus.CLAIMED
    assert challenges.lockout("u").disabled
    clock.now += 10 * 86_400_000
    assert challenges.create("u", 6, 60).reason == "disabled"  # no delay ever lifts it
    assert challenges.reset("u").failures == 50
    assert not isinstance(challenges.create("u", 6, 60), Refused)


def test_success_resets_the_consecutive_count(store):
    challenges = store(Limits(per_user=1000))
    for _ in range(4):
        fail(challenges, "u")
    challenges.reset("u")  # what RecordSuccess does
    for _ in range(4):
        fail(challenges, "u")
    assert not isinstance(challenges.create("u", 6, 60), Refused)


def test_issuance_rate_limits_per_user_and_per_caller(store):
    challenges = store(Limits(per_user=3, per_caller=5))
    for _ in range(3):
        assert not isinstance(challenges.create("a", 6, 60, caller="bank"), Refused)
    refused = challenges.create("a", 6, 60, caller="bank")
    assert refused.reason == "rate" and 0 < refused.retry_after_ms <= 60_000
    for user in ("b", "c"):
        assert not isinstance(challenges.create(user, 6, 60, caller="bank"), Refused)
    assert challenges.create("d", 6, 60, caller="bank").reason == "rate"
    assert not isinstance(challenges.create("d", 6, 60, caller="shop"), Refused)


# --- through real gateways ------------------------------------------------------------------------

@pytest.fixture
def strict_stack(stacks):
    def make(**env):
        # real lockout thresholds; replay detection off, as the tests reuse a few samples
        return stacks(relaxed=False, **{"HWOTP_RATE_PER_USER": "1000", "HWOTP_ADMIN_CALLERS": "local",
                                        "HWOTP_REPLAY_THRESHOLD": "2", **env})

    return make


def _impostor_fails(gateway, user, writers) -> gateway_pb2.SubmitChallengeResponse:
    challenge = begin(gateway, user)
    return submit(gateway, user, challenge, writers[1].write(challenge.digits, rng))


def test_five_failures_stop_challenges_for_thirty_seconds(strict_stack, writers):
    running = strict_stack()
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        gateway.Enroll(writers[0].enrolment("victim"), timeout=30)
        for _ in range(5):
            assert _impostor_fails(gateway, "victim", writers).reason == gateway_pb2.WRITER_MISMATCH
        with pytest.raises(grpc.RpcError) as error:
            begin(gateway, "victim")
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry = retry_after_s(error.value)
        assert 29 <= retry <= 30


def test_fifty_failures_disable_until_admin_reset(strict_stack, writers):
    running = strict_stack(HWOTP_LOCKOUT_DELAY_MS="1")
    with gateway_channel(running.gateway, running.api_key) as channel:
        gateway = gateway_stub(channel)
        gateway.Enroll(writers[0].enrolment("victim"), timeout=30)
        for _ in range(50):
            while True:
                try:
                    challenge = begin(gateway, "victim")
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the growing delay
                    time.sleep(0.01)
            submit(gateway, "victim", challenge, writers[1].write(challenge.digits, rng))
        while True:  # past the last delay, only the disabled state refuses
            with pytest.raises(grpc.RpcError) as error:
                begin(gateway, "victim")
            if error.value.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                break
            time.sleep(0.01)
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "disabled" in error.value.details()
        reset = gateway.ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="victim"), timeout=5)
        assert reset.failures_cleared == 50 and reset.was_disabled
        challenge = begin(gateway, "victim")
        answer = submit(gateway, "victim", challenge, writers[0].write(challenge.digits, rng))
        assert answer.decision == gateway_pb2.ACCEPT


def test_reset_needs_an_admin_caller(strict_stack):
    running = strict_stack(HWOTP_ADMIN_CALLERS="ops")
    with gateway_channel(running.gateway, running.api_key) as channel:
        with pytest.raises(grpc.RpcError) as error:
            gateway_stub(channel).ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="victim"), timeout=5)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_concurrent_failures_through_several_gateways_all_count(strict_stack, writers):
    running = strict_stack(HWOTP_LOCKOUT_THROTTLE_AFTER="1000", HWOTP_LOCKOUT_DISABLE_AFTER="1000",
                           HWOTP_MAX_PENDING_CHALLENGES="24")
    replicas = [running.gateway] + [running.start_service(f"gateway-{i}", "gateway", role="gateway").address
                                    for i in (2, 3)]
    channels = [gateway_channel(address, running.api_key) for address in replicas]
    stubs = [gateway_stub(c) for c in channels]
    stubs[0].Enroll(writers[0].enrolment("victim"), timeout=30)
    challenges = [begin(stubs[0], "victim") for _ in range(24)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda pair: submit(stubs[pair[0] % 3], "victim", pair[1],
                                                    writers[1].write(pair[1].digits, random.Random(pair[0]))),
                                enumerate(challenges)))
    assert all(a.reason == gateway_pb2.WRITER_MISMATCH for a in answers)
    reset = stubs[1].ResetLockout(gateway_pb2.ResetLockoutRequest(user_id="victim"), timeout=5)
    assert reset.failures_cleared == 24
    for channel in channels:
        channel.close()
