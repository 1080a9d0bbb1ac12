"""Replay-fingerprint history in a real redis-server: one sealed entry per submission,
trimmed to the newest entries holding at most `history` boxes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import redis

from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, new_key_entry
from local.redis_server import RedisServer
from services.verifier.templates import Templates, TemplateStore


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield redis.Redis(port=server.port)
    server.stop()


def boxes(first: int, count: int) -> np.ndarray:
    """Fingerprints whose first byte numbers them, to see which ones were kept."""
    prints = np.zeros((count, FINGERPRINT_BYTES), dtype=np.int8)
    prints[:, 0] = np.arange(first, first + count)
    return prints


def enrol(store: TemplateStore, user: str, count: int) -> None:
    store.save(user, Templates("v1", np.ones((10, 4), dtype=np.float32), count), boxes(0, count))


def test_history_keeps_the_newest_submissions_within_the_box_limit(client):
    store = TemplateStore(client, Sealer.from_settings(new_key_entry("k"), "k"), history=20)
    enrol(store, "trim", 12)
    _, seen, _ = store.load_and_remember("trim", boxes(30, 6))
    assert seen[:, 0].tolist() == list(range(12))  # the enrolment, before this submission joined
    _, seen, _ = store.load_and_remember("trim", boxes(60, 6))
    # 12 + 6 = 18 boxes fit in 20; adding 6 more drops the enrolment's entry whole
    assert seen[:, 0].tolist() == list(range(12)) + list(range(30, 36))
    _, seen, _ = store.load_and_remember("trim", np.zeros((0, FINGERPRINT_BYTES), dtype=np.int8))
    assert seen[:, 0].tolist() == list(range(30, 36)) + list(range(60, 66))
    assert client.llen(f"hwotp:fp:{hashlib.sha256(b'trim').hexdigest()}") == 2  # one entry per submission


def test_a_submission_larger_than_the_limit_is_still_remembered(client):
    store = TemplateStore(client, Sealer.from_settings(new_key_entry("k"), "k"), history=4)
    enrol(store, "big", 30)
    store.load_and_remember("big", boxes(30, 6))
    _, seen, _ = store.load_and_remember("big", boxes(60, 1))
    assert seen[:, 0].tolist() == list(range(30, 36))
