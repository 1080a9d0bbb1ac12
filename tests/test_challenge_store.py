"""Challenges in a real redis-server: distinct CSPRNG digits, TTL, one claim only."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from local.redis_server import RedisServer
from services.challenge.store import ChallengeStore, random_digits


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield redis.Redis(port=server.port)
    server.stop()


def test_digits_are_distinct_and_cover_every_digit():
    seen = Counter()
    for _ in range(500):
        digits = random_digits(6)
        assert len(digits) == 6 and len(set(digits)) == 6
        seen.update(digits)
    assert set(seen) == set("0123456789")
    assert min(seen.values()) > 0.6 * max(seen.values())  # no digit starved


def test_challenge_lives_as_long_as_its_time_limit(client):
    issued = ChallengeStore(client).create("u1", 6, 60)
    ttl_ms = client.pttl(f"hwotp:ch:{issued.challenge_id}")
    assert 58_000 < ttl_ms <= 60_000
    assert abs(issued.expires_at_ms - (time.time() * 1000 + 60_000)) < 2000


def test_claim_once_then_already_used(client):
    store = ChallengeStore(client)
    issued = store.create("u1", 6, 60)
    first = store.claim(issued.challenge_id, "u1")
    assert first.status == "claimed" and first.digits == issued.digits
    assert store.claim(issued.challenge_id, "u1").status == "used"


def test_another_user_cannot_claim_and_does_not_burn_it(client):
    store = ChallengeStore(client)
    issued = store.create("u1", 6, 60)
    assert store.claim(issued.challenge_id, "mallory").status == "unknown"
    assert store.claim(issued.challenge_id, "u1").status == "claimed"


def test_unknown_and_expired(client):
    store = ChallengeStore(client)
    assert store.claim("no-such-challenge", "u1").status == "unknown"
    issued = store.create("u1", 4, 1)
    client.pexpire(f"hwotp:ch:{issued.challenge_id}", 1)  # let the time limit pass now
    time.sleep(0.01)
    assert store.claim(issued.challenge_id, "u1").status == "expired"


def test_concurrent_claims_exactly_one_wins(client):
    """100 trials of 8 concurrent claims of one challenge."""
    store = ChallengeStore(client)
    for trial in range(100):
        user = f"racer-{trial}"  # claims count as failures until a success: keep each user fresh
        issued = store.create(user, 6, 60)
        with ThreadPoolExecutor(8) as pool:
            results = Counter(pool.map(lambda _: store.claim(issued.challenge_id, user).status, range(8)))
        assert results == Counter({"claimed": 1, "used": 7})
