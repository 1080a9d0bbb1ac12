"""Replay-fingerprint history in a real redis-server: the enrolment's boxes for as long as the
enrolment, accepted answers' boxes for the history's horizon, rejected answers' never."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from hwotp.errors import FailedPrecondition
from hwotp.preprocess import FINGERPRINT_BYTES
from hwotp.sealing import Sealer, new_key_entry
from local.redis_server import RedisServer
from services.verifier.reseal import reseal_all
from services.verifier.templates import NotReplicated, Templates, TemplateStore

pytestmark = pytest.mark.integration  # starts processes

DAY_MS = 86_400_000

class Clock:
    def __init__(self):
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


def boxes(first: int, count: int) -> np.ndarray:
    """Fingerprints whose first byte numbers them, to see which ones were kept."""
    prints = np.zeros((count, FINGERPRINT_BYTES), dtype=np.int8)
    prints[:, 0] = np.arange(first, first + count)
    return prints


def store_and_clock(redis_client, days: int = 90) -> tuple[TemplateStore, Clock]:
    clock = Clock()
    return TemplateStore(redis_client, Sealer.from_settings(new_key_entry("k"), "k"), days, clock), clock


def enrol(store: TemplateStore, subject: str, count: int, replace: bool = False) -> None:
    store.save(subject, Templates("v1", np.ones((10, 4), dtype=np.float32), count), boxes(0, count), replace=replace)


def seen(store: TemplateStore, subject: str) -> list[int]:
    return store.load_for_verification(subject)[1][:, 0].tolist()


def test_only_remembered_answers_join_and_the_enrolment_always_stays(redis_client):
    store, _ = store_and_clock(redis_client)
    enrol(store, "s1", 12)
    assert seen(store, "s1") == list(range(12))
    seen(store, "s1")  # a verification alone adds nothing: rejected answers never join
    assert seen(store, "s1") == list(range(12))
    for first in range(30, 30 + 40 * 10, 10):  # many accepted answers push nothing out
        assert store.remember("s1", boxes(first, 6))
    history = seen(store, "s1")
    assert history[:12] == list(range(12)) and len(history) == 12 + 40 * 6


def test_accepted_answers_age_out_after_the_horizon(redis_client):
    store, clock = store_and_clock(redis_client, days=2)
    enrol(store, "s2", 3)
    store.remember("s2", boxes(30, 6))
    clock.now += DAY_MS
    store.remember("s2", boxes(60, 6))
    assert seen(store, "s2") == list(range(3)) + list(range(30, 36)) + list(range(60, 66))
    clock.now += DAY_MS + 1
    assert seen(store, "s2") == list(range(3)) + list(range(60, 66))


def test_an_unenrolled_subject_remembers_nothing(redis_client):
    store, _ = store_and_clock(redis_client)
    assert not store.remember("nobody", boxes(0, 6))
    assert not redis_client.exists("hwotp:{nobody}:fpa")


def test_an_enrolled_subject_is_replaced_only_when_asked(redis_client):
    store, _ = store_and_clock(redis_client)
    enrol(store, "s3", 3)
    store.remember("s3", boxes(30, 6))
    with pytest.raises(FailedPrecondition, match="already enrolled"):
        enrol(store, "s3", 5)
    assert store.load("s3").samples == 3
    enrol(store, "s3", 5, replace=True)
    # a re-enrolment replaces the enrolment's boxes; accepted answers stay in the history
    assert store.load("s3").samples == 5 and seen(store, "s3") == list(range(5)) + list(range(30, 36))
    assert store.delete("s3") and not redis_client.keys("hwotp:{s3}:*")


def test_reseal_moves_every_blob_to_the_current_key(redis_client):
    old_entry, new_entry = new_key_entry("old"), new_key_entry("new")
    old = TemplateStore(redis_client, Sealer.from_settings(old_entry, "old"))
    old.save("s4", Templates("v1", np.ones((10, 4), dtype=np.float32), 3, np.full((10, 2), 0.5, np.float32), "o1"),
             boxes(0, 3),
             images=[(1, b"png")], trajectories=[(1, b"strokes")], display={1: b"shown"})
    old.remember("s4", boxes(30, 6))
    old.set_repositioning("s4", "reverse")
    rotated = Sealer.from_settings(f"{old_entry},{new_entry}", "new")
    done = reseal_all(redis_client, rotated, report=lambda line: None)
    assert done.blobs == 9  # vectors, online vectors, depth, enrolment prints, image, trajectory, display,
    # accepted prints, scheme
    assert reseal_all(redis_client, rotated, report=lambda line: None).blobs == 0
    only_new = TemplateStore(redis_client, Sealer.from_settings(new_entry, "new"))
    templates, history, scheme = only_new.load_for_verification("s4")
    assert templates.online.tolist() == np.full((10, 2), 0.5).tolist() and templates.online_version == "o1"
    assert templates.samples == 3 and history[:, 0].tolist() == [0, 1, 2] + list(range(30, 36)) and scheme == "reverse"
    assert only_new.kept("s4", "img") == [(1, b"png")] and only_new.kept("s4", "trj") == [(1, b"strokes")]
    assert only_new.display_templates("s4", [1]) == [b"shown"]


def test_online_templates_are_kept_sealed_beside_the_image_ones(redis_client):
    store, _ = store_and_clock(redis_client)
    online = np.arange(20, dtype=np.float32).reshape(10, 2)
    store.save("s5", Templates("v1", np.ones((10, 4), dtype=np.float32), 10, online, "online-1"), boxes(0, 10))
    found = store.load("s5")
    assert found.online.tolist() == online.tolist() and found.online_version == "online-1"
    stored = redis_client.hgetall("hwotp:{s5}:tpl")
    assert stored[b"online_version"] == b"online-1" and online.tobytes() not in stored[b"online"]
    # sealed as a kind of its own: the image templates' blob does not open as online ones
    redis_client.hset("hwotp:{s5}:tpl", "online", stored[b"vectors"])
    with pytest.raises(FailedPrecondition):
        store.load("s5")
    # a user enrolled without strokes has none
    store.save("s6", Templates("v1", np.ones((10, 4), dtype=np.float32), 10), boxes(0, 10))
    assert store.load("s6").online is None and store.load("s6").online_version == ""


def test_the_enrolment_depth_is_kept_sealed_and_older_enrolments_count_as_one_deep(redis_client):
    """The depth picks the calibration that scores the user: it cannot be rewritten in Redis."""
    store, _ = store_and_clock(redis_client)
    store.save("s7", Templates("v1", np.ones((10, 4), dtype=np.float32), 30, depth=3), boxes(0, 30))
    store.save("s8", Templates("v1", np.ones((10, 4), dtype=np.float32), 10, depth=1), boxes(0, 10))
    assert store.load("s7").depth == 3 and store.load("s8").depth == 1
    # another user's sealed depth does not open as this one's
    redis_client.hset("hwotp:{s8}:tpl", "depth", redis_client.hget("hwotp:{s7}:tpl", "depth"))
    with pytest.raises(FailedPrecondition):
        store.load("s8")
    redis_client.hdel("hwotp:{s7}:tpl", "depth")  # as stored before depths were
    assert store.load("s7").depth == 1


def test_enrolment_and_deletion_are_acknowledged_once_a_replica_has_them(tmp_path):
    primary, replica = RedisServer(tmp_path / "primary").start(), RedisServer(tmp_path / "replica").start()
    try:
        replica.client().replicaof("127.0.0.1", primary.port)
        deadline = time.monotonic() + 30  # a guard against a hang, not a bound on how fast
        while replica.client().info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synchronised"
            time.sleep(0.05)
        store = TemplateStore(primary.client(), Sealer.from_settings(new_key_entry("k"), "k"), replica_wait_ms=300)
        enrol(store, "s7", 3)
        # acknowledged: the replica has it at the moment save() returns
        assert replica.client().hexists("hwotp:{s7}:tpl", "vectors")
        os.kill(replica.process.pid, signal.SIGSTOP)  # connected, but confirming nothing
        try:
            with pytest.raises(NotReplicated, match="no Redis replica confirmed it within 300 ms"):
                store.delete("s7")
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
    finally:
        replica.kill()
        primary.stop()
