"""Shared fixtures: real data of held-out writers, the real models, real processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.cluster

from hwotp.client import METADATA_KEY, gateway_channel, gateway_stub
from hwotp.models import SCAN, STROKES, ModelBundle
from hwotp.subjects import Subjects, parse_key
from hwotp.v1 import gateway_pb2
from local.handwriting import StrokeWriter, Writer
from local.redis_server import RedisClusterServers, RedisServer
from local.signers import load_signer
from local.stack import Stack
from local.verdicts import keep_certain
from training import data, split, strokes, unipen


# The suite runs against one redis-server, and again against a Redis Cluster (make test).
CLUSTER = os.environ.get("HWOTP_LOCAL_REDIS") == "cluster"


@pytest.fixture(scope="session")
def bundle() -> ModelBundle:
    return ModelBundle.load()


@pytest.fixture(scope="session")
def test_digits() -> data.DigitSet:
    """Digits of the test writers only (never used to train or tune)."""
    return data.load().of_writers(split.load_split()["test"])


def _writer(digits: data.DigitSet, key: int) -> Writer:
    mine = digits.writers == key
    return Writer(digits.images[mine], digits.digits[mine])


@pytest.fixture(scope="session")
def writers(bundle, test_digits) -> tuple[Writer, Writer]:
    """(genuine, impostor): two held-out writers, their probes sorted by what the models make of them.

    Integration tests check the system's plumbing, not model quality (that is
    training.evaluate's job): a genuine login writes only probes the models
    accept, an impostor only probes the writer check rejects against the
    victim, so that every expected decision is deterministic.
    """
    from local.demo import DEMO_WRITER, IMPOSTOR_WRITER

    genuine, impostor = _writer(test_digits, DEMO_WRITER), _writer(test_digits, IMPOSTOR_WRITER)
    keep_certain(bundle, genuine, impostor, SCAN)
    return genuine, impostor


STROKE_WRITERS = ("apb/Bill_Cleveland", "apb/Rosemary_Maselli")  # test writers of models/unipen-split.json


@pytest.fixture(scope="session")
def stroke_samples() -> list[strokes.StrokeSample]:
    """UNIPEN's digits as a stroke set (`make data` writes it; else read from the archive)."""
    return unipen.samples()


@pytest.fixture(scope="session")
def stroke_writers(bundle, stroke_samples) -> tuple[StrokeWriter, StrokeWriter]:
    """(genuine, impostor): two held-out stroke-set writers, sent as strokes only; their probes
    sorted as `writers` sorts them, in the strokes domain."""
    samples = stroke_samples
    made = []
    for name in STROKE_WRITERS:
        mine = [s for s in samples if s.writer == name]
        made.append(StrokeWriter([s.strokes for s in mine], np.array([s.digit for s in mine])))
    keep_certain(bundle, made[0], made[1], STROKES)
    return made[0], made[1]


# Most tests log in far more often than a person could, reusing each held-out
# writer's few samples per digit (a real writer never writes a box twice):
# lockout, rate limits and replay detection are tested on stacks of their own.
RELAXED = {"HWOTP_RATE_PER_USER": "1000000", "HWOTP_LOCKOUT_THROTTLE_AFTER": "1000000",
           "HWOTP_LOCKOUT_DISABLE_AFTER": "1000000", "HWOTP_REPLAY_THRESHOLD": "2",
           "HWOTP_MAX_PENDING_CHALLENGES": "1000000", "HWOTP_CALLER_SUBMITS_PER_MIN": "1000000",
           "HWOTP_CALLER_ENROLS_PER_MIN": "1000000"}
# Tests assert challenge lengths: no decoy step-ups (tested on a stack of their own).
EXACT = {"HWOTP_LOG_LEVEL": "WARNING", "HWOTP_STEPUP_DECOY_RATE": "0"}


@pytest.fixture(scope="session")
def signer() -> tuple[dict, list[int], list[int]]:
    """An SVC2004 user's signatures as strokes, with genuine probes and skilled forgeries the served
    verifier judges with a margin: system tests assert the wiring, evaluate_signatures the quality."""
    signed, genuine, forged = load_signer()
    assert len(genuine) >= 2 and forged, "the served verifier no longer tells this user's signatures apart"
    return signed, genuine, forged


def start_stack(tmp: Path, relaxed: bool = True, **env: str) -> Stack:
    return Stack(tmp, env={**EXACT, **(RELAXED if relaxed else {}), **env}).start()


class Stacks:
    """Stacks of a test's own, and gateway clients of them: all stopped and closed after the test."""

    def __init__(self, directory: Path):
        self.directory, self.made, self.channels = directory, [], []

    def __call__(self, relaxed: bool = True, **env: str) -> Stack:
        self.made.append(start_stack(self.directory / str(len(self.made)), relaxed, **env))
        return self.made[-1]

    def stub(self, stack: Stack, api_key: str | None = None):
        self.channels.append(gateway_channel(stack.gateway, api_key or stack.api_key, stack.credentials))
        return gateway_stub(self.channels[-1])

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for stack in self.made:
            stack.stop()


@pytest.fixture
def stacks(tmp_path):
    made = Stacks(tmp_path)
    yield made
    made.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """One redis-server, or with HWOTP_LOCAL_REDIS=cluster a 6-node Redis Cluster (as the
    stacks of the tests then run on)."""
    servers = RedisClusterServers if CLUSTER else RedisServer
    server = servers(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    """A real Redis, empty for each test."""
    client = redis_server.client()
    if CLUSTER:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    else:
        client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def gateway(stack):
    with gateway_channel(stack.gateway, stack.api_key) as channel:
        yield gateway_stub(channel)


def subject_of(stack, user: str, caller: str = "local") -> str:
    """Who `user` of `caller` is below the gateway (hwotp.subjects)."""
    return Subjects(parse_key(stack.env["HWOTP_SUBJECT_KEY"])).of(caller, user)


def key_of(subject: str, kind: str) -> str:
    """The Redis key of one kind of a subject's state."""
    return f"hwotp:{{{subject}}}:{kind}"


def key_metadata(stack) -> tuple:
    return ((METADATA_KEY, stack.api_key),)


@pytest.fixture(scope="module")
def enrolled(gateway, writers) -> str:
    user = "alice@example.com"
    gateway.Enroll(writers[0].enrolment(user), timeout=30)
    return user


def submit(gateway, user: str, challenge: gateway_pb2.BeginChallengeResponse, boxes, timeout: float = 10):
    return gateway.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
        challenge_id=challenge.challenge_id, user_id=user, boxes=boxes), timeout=timeout)


def begin(gateway, user: str, length: int = 0) -> gateway_pb2.BeginChallengeResponse:
    return gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user, length=length), timeout=10)
