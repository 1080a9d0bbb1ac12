"""Challenges in a real redis-server: distinct CSPRNG digits, TTL, one claim only."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from hwotp.outcomes import ClaimStatus
from services.challenge.store import MARKER_GRACE_MS, ChallengeStore, Limits, Refused, random_digits

pytestmark = pytest.mark.integration  # starts processes

class Clock:
    def __init__(self):
        self.now = 1_700_000_040_000  # 40 s into a minute

    def __call__(self) -> int:
        return self.now


def test_digits_are_distinct_and_cover_every_digit():
    seen = Counter()
    for _ in range(500):
        digits = random_digits(6)
        assert len(digits) == 6 and len(set(digits)) == 6
        seen.update(digits)
    assert set(seen) == set("0123456789")
    assert min(seen.values()) > 0.6 * max(seen.values())  # no digit starved


def test_challenge_lives_as_long_as_its_time_limit(redis_client):
    clock = Clock()
    issued = ChallengeStore(redis_client, clock=clock).create("u1", 6, 60)
    assert issued.expires_at_ms == clock.now + 60_000
    assert 0 < redis_client.pttl(f"hwotp:{{u1}}:ch:{issued.challenge_id}") <= 60_000


def test_claim_once_then_already_used(redis_client):
    store = ChallengeStore(redis_client)
    issued = store.create("u1", 6, 60)
    first = store.claim(issued.challenge_id, "u1")
    assert first.status is ClaimStatus.CLAIMED and first.digits == issued.digits
    assert store.claim(issued.challenge_id, "u1").status is ClaimStatus.ALREADY_USED


def test_another_user_cannot_claim_and_does_not_burn_it(redis_client):
    store = ChallengeStore(redis_client)
    issued = store.create("u1", 6, 60)
    assert store.claim(issued.challenge_id, "mallory").status is ClaimStatus.UNKNOWN
    assert store.claim(issued.challenge_id, "u1").status is ClaimStatus.CLAIMED


def test_unknown_and_expired(redis_client):
    store = ChallengeStore(redis_client)
    assert store.claim("no-such-challenge", "u1").status is ClaimStatus.UNKNOWN
    issued = store.create("u1", 4, 1)
    redis_client.pexpire(f"hwotp:{{u1}}:ch:{issued.challenge_id}", 1)  # let the time limit pass now
    while redis_client.exists(f"hwotp:{{u1}}:ch:{issued.challenge_id}"):
        time.sleep(0.001)
    assert store.claim(issued.challenge_id, "u1").status is ClaimStatus.EXPIRED


def test_concurrent_claims_exactly_one_wins(redis_client):
    """100 trials of 8 concurrent claims of one challenge."""
    store = ChallengeStore(redis_client)
    for trial in range(100):
        user = f"racer-{trial}"  # claims count as failures until a success: keep each user fresh
        issued = store.create(user, 6, 60)
        with ThreadPoolExecutor(8) as pool:
            results = Counter(pool.map(lambda _: store.claim(issued.challenge_id, user).status, range(8)))
        assert results == Counter({ClaimStatus.CLAIMED: 1, ClaimStatus.ALREADY_USED: 7})


def test_a_marker_outlives_its_challenge_by_minutes_not_a_day(redis_client):
    issued = ChallengeStore(redis_client).create("u-marker", 6, 60)
    assert 0 < redis_client.pttl(f"hwotp:{{u-marker}}:chm:{issued.challenge_id}") <= 60_000 + MARKER_GRACE_MS


def test_issuance_windows_slide(redis_client):
    """10 per minute means 10 in any 60 s, also across a minute's boundary."""
    clock = Clock()
    store = ChallengeStore(redis_client, Limits(per_user=10, max_pending=100), clock)
    for _ in range(10):
        assert not isinstance(store.create("u-slide", 6, 60), Refused)
    clock.now += 25_000  # a fixed window would start afresh here
    refused = store.create("u-slide", 6, 60)
    assert isinstance(refused, Refused) and refused.reason == "rate" and refused.retry_after_ms == 35_000
    clock.now += 35_000
    assert not isinstance(store.create("u-slide", 6, 60), Refused)


def test_pending_challenges_are_capped_the_oldest_gives_way(redis_client):
    store = ChallengeStore(redis_client, Limits(max_pending=3))
    issued = [store.create("u-pending", 6, 60) for _ in range(5)]
    assert redis_client.llen("hwotp:{u-pending}:pending") == 3
    assert [store.claim(i.challenge_id, "u-pending").status for i in issued] == \
        [ClaimStatus.EXPIRED, ClaimStatus.EXPIRED, ClaimStatus.CLAIMED, ClaimStatus.CLAIMED, ClaimStatus.CLAIMED]


def test_a_claim_with_the_wrong_box_count_neither_consumes_nor_counts(redis_client):
    store = ChallengeStore(redis_client)
    issued = store.create("u-count", 6, 60)
    wrong = store.claim(issued.challenge_id, "u-count", boxes=5)
    assert (wrong.status, wrong.length) == (ClaimStatus.WRONG_LENGTH, 6)
    assert store.lockout("u-count").failures == 0
    assert store.claim(issued.challenge_id, "u-count", boxes=6).status is ClaimStatus.CLAIMED


def test_the_throttle_holds_when_challenges_are_answered(redis_client):
    """Challenges issued before the failures cannot outrun the throttle."""
    store = ChallengeStore(redis_client, Limits(throttle_after=3, delay_ms=30_000, max_pending=10))
    issued = [store.create("u-burst", 6, 60) for _ in range(6)]
    statuses = [store.claim(i.challenge_id, "u-burst").status for i in issued]
    assert statuses == [ClaimStatus.CLAIMED] * 3 + [ClaimStatus.THROTTLED] * 3
    assert store.lockout("u-burst").failures == 3
    held = store.claim(issued[3].challenge_id, "u-burst")
    assert 29_000 <= held.retry_after_ms <= 30_000


def test_a_throttled_user_gets_stepped_up_challenges_until_a_success(redis_client):
    """Active defence against brute force: once the failures throttle a user, their
    challenges are longer, until a login succeeds."""
    clock = Clock()
    store = ChallengeStore(redis_client, Limits(throttle_after=2, delay_ms=1_000, stepup_decoy_rate=0.0), clock)
    for _ in range(2):
        issued = store.create("u-brute", 6, 60)
        assert len(issued.digits) == 6 and not issued.stepped_up
        assert store.claim(issued.challenge_id, "u-brute").status is ClaimStatus.CLAIMED
    clock.now += 1_000
    stepped = store.create("u-brute", 6, 60)
    assert stepped.stepped_up and len(stepped.digits) == 8
    claim = store.claim(stepped.challenge_id, "u-brute")
    store.succeed("u-brute", claim.stepped_up)
    after = store.create("u-brute", 6, 60)
    assert not after.stepped_up and len(after.digits) == 6


def test_owner_tokens_are_single_use_and_bound_to_their_subject(redis_client):
    store = ChallengeStore(redis_client)
    token = store.succeed("u-owner", stepped_up=False)
    assert not store.redeem("u-other", token)
    assert store.redeem("u-owner", token)
    assert not store.redeem("u-owner", token)
    assert not store.redeem("u-owner", "")


def test_forgive_takes_back_one_failure_and_the_disabling_it_caused(redis_client):
    store = ChallengeStore(redis_client, Limits(throttle_after=100, disable_after=2))
    for _ in range(2):
        assert store.claim(store.create("u-forgive", 6, 60).challenge_id, "u-forgive").status is ClaimStatus.CLAIMED
    assert store.lockout("u-forgive").disabled
    assert store.forgive("u-forgive") == store.lockout("u-forgive")
    assert (store.lockout("u-forgive").failures, store.lockout("u-forgive").disabled) == (1, False)


def test_forget_removes_the_subjects_state(redis_client):
    store = ChallengeStore(redis_client)
    issued = store.create("u-forget", 6, 60)
    store.claim(store.create("u-forget", 6, 60).challenge_id, "u-forget")
    store.step_up("u-forget")
    assert store.forget("u-forget") >= 4
    left = {key.decode().split(":")[2] for key in redis_client.scan_iter("hwotp:{u-forget}:*")}
    assert left == {"chm"}  # markers expire on their own
    assert store.claim(issued.challenge_id, "u-forget").status is ClaimStatus.EXPIRED


def test_a_signature_challenge_counts_its_box_and_refuses_one_that_cannot_be_a_signature(redis_client):
    store = ChallengeStore(redis_client)
    alone = store.create("u-sig", 6, 60, signature="only")
    assert (alone.digits, alone.signature) == ("", True)
    unfit = store.claim(alone.challenge_id, "u-sig", boxes=1, last_box_fits_signature=False)
    assert unfit.status is ClaimStatus.SIGNATURE_UNFIT and store.lockout("u-sig").failures == 0
    claimed = store.claim(alone.challenge_id, "u-sig", boxes=1, last_box_fits_signature=True)
    assert (claimed.status, claimed.digits, claimed.signature) == (ClaimStatus.CLAIMED, "", True)
    both = store.create("u-sig", 6, 60, signature="with")
    assert (len(both.digits), both.signature) == (6, True)
    wrong = store.claim(both.challenge_id, "u-sig", boxes=6, last_box_fits_signature=True)
    assert (wrong.status, wrong.length) == (ClaimStatus.WRONG_LENGTH, 7)
    assert store.claim(both.challenge_id, "u-sig", boxes=7, last_box_fits_signature=True).signature


def test_a_step_up_adds_the_signature_only_for_users_who_enrolled_one(redis_client):
    store = ChallengeStore(redis_client)
    store.step_up("u-stepped")
    without = store.create("u-stepped", 6, 60)
    assert without.stepped_up and not without.signature
    signed = store.create("u-stepped", 6, 60, signature_enrolled=True)
    assert signed.stepped_up and signed.signature and len(signed.digits) == 8
    assert not store.create("u-calm", 6, 60, signature_enrolled=True).signature
